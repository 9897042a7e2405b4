// Training-run benchmarks for Microsoft.ML.Zero. Each benchmark replaces its own section of docs/benchmarks.md.
//   dotnet run -c Release --project test/Microsoft.ML.Zero.Benchmarks -- all | finetune | schedule | longtext ... [--report <path>]
using Microsoft.ML.Zero.Benchmarks;

if (args.Length > 0 && args[0] == ChildProcess.Flag)
{
    switch (args[1])
    {
        case FineTuneBenchmark.Name: ChildProcess.Report(FineTuneBenchmark.Measure(int.Parse(args[2]), Enum.Parse<Microsoft.ML.Zero.ZeroPrecision>(args[3]))); break;
        case ScheduleBenchmark.Name: ChildProcess.Report(ScheduleBenchmark.Measure(Enum.Parse<Microsoft.ML.Zero.ZeroSchedulerType>(args[2]))); break;
        case ScoringBenchmark.Name: ChildProcess.Report(ScoringBenchmark.Measure(args.Length > 2 ? args[2] : null)); break;
        case LongTextBenchmark.Name: ChildProcess.Report(LongTextBenchmark.Measure(Enum.Parse<Microsoft.ML.Zero.ZeroLongTextHandling>(args[2]))); break;
        case EngineBenchmark.MemoryChild: ChildProcess.Report(EngineBenchmark.MeasureMemory(Enum.Parse<Microsoft.ML.Zero.ZeroPrecision>(args[2]), Enum.Parse<Microsoft.ML.Zero.ZeroPrecision>(args[3]))); break;
        case EngineBenchmark.LeakChild: ChildProcess.Report(EngineBenchmark.MeasureLongRun()); break;
        case RandomBertSteps.Child: ChildProcess.Report(RandomBertSteps.Measure(args[2..])); break;
        case GroupByLengthBenchmark.Child: ChildProcess.Report(GroupByLengthBenchmark.Measure(bool.Parse(args[2]))); break;
        case OverlapBenchmark.Child: ChildProcess.Report(OverlapBenchmark.Measure(args[2])); break;
        case AllReduceBenchmark.MpiChild: ChildProcess.Report(AllReduceBenchmark.MeasureMpi(int.Parse(args[2]), Enum.Parse<Microsoft.ML.Zero.ZeroPrecision>(args[3]), bool.Parse(args[4]))); break;
        default: throw new ArgumentException($"Unknown benchmark '{args[1]}'.");
    }
    return 0;
}

var benchmarks = new Dictionary<string, Func<string>>
{
    [FineTuneBenchmark.Name] = FineTuneBenchmark.Run,
    ["precision"] = FineTuneBenchmark.RunPrecision,
    [ScheduleBenchmark.Name] = ScheduleBenchmark.Run,
    [LongTextBenchmark.Name] = LongTextBenchmark.Run,
    [ScoringBenchmark.Name] = ScoringBenchmark.Run,
    [AllReduceBenchmark.Name] = AllReduceBenchmark.Run,
    [EngineBenchmark.OverheadName] = EngineBenchmark.RunOverhead,
    [EngineBenchmark.MemoryName] = EngineBenchmark.RunMemory,
    [OverlapBenchmark.Name] = OverlapBenchmark.Run,
    [GroupByLengthBenchmark.Name] = GroupByLengthBenchmark.Run,
    [MicroBenchmarks.Name] = MicroBenchmarks.Run,
    [PeerBenchmark.Name] = PeerBenchmark.Run,
    [ClusterBenchmark.Name] = ClusterBenchmark.Run,
};
string report = Path.GetFullPath(ReportPathArgument() ?? Path.Combine(RepositoryRoot(), "docs", "benchmarks.md"));
ReportFile.Path = report;
var chosen = args.Where(a => !a.StartsWith("--", StringComparison.Ordinal) && a != ReportPathArgument()).ToList();
if (chosen.Count == 0 || chosen.Any(name => name != "all" && !benchmarks.ContainsKey(name)))
{
    Console.Error.WriteLine($"usage: Microsoft.ML.Zero.Benchmarks all | {string.Join(" | ", benchmarks.Keys)} [--report <path>]");
    return 2;
}
foreach (var (name, run) in benchmarks.Where(b => chosen.Contains("all") || chosen.Contains(b.Key)))
{
    Console.WriteLine($"{name}:");
    ReportFile.ReplaceSection(report, name, run());
    Console.WriteLine($"{name}: written to {report}");
}
return 0;

string? ReportPathArgument()
{
    int at = Array.IndexOf(args, "--report");
    return at >= 0 && at + 1 < args.Length ? args[at + 1] : null;
}

static string RepositoryRoot()
{
    for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        if (File.Exists(Path.Combine(dir.FullName, "Microsoft.ML.Zero.sln")))
            return dir.FullName;
    throw new DirectoryNotFoundException("Run from inside the repository, or pass --report <path>.");
}
