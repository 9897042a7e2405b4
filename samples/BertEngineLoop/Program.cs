// The DeepSpeed training loop of a Hugging Face BERT classifier, ported line for line to C# with ZeroEngine. Each
// Python line of the DeepSpeed version stands above its C# counterpart. It fine-tunes all-MiniLM-L6-v2 for one epoch
// on the UCI Sentiment Labelled Sentences with 2 in-process ranks (or, under `mpirun -np 2`, one rank per process),
// saves a DeepSpeed-style checkpoint and reports test accuracy.
using Microsoft.ML.Zero;
using Microsoft.ML.Zero.Models.Bert;
using Microsoft.ML.Zero.SampleData;
using static TorchSharp.torch;

string checkpointPath = MiniLm.Directory();
var all = SentimentData.All();
var random = new Random(0);
var shuffled = all.OrderBy(_ => random.Next()).ToArray();
var (train, test) = (shuffled[..2400], shuffled[2400..]);

// deepspeed --num_gpus 2 train.py   (each rank runs what follows)
ZeroEngine.Launch(worldSize: 2, rank =>
{
    // tokenizer = BertTokenizer.from_pretrained(path)
    var tokenizer = BertBatchTokenizer.FromPretrained(checkpointPath, maxSequenceLength: 64);
    // model = BertForSequenceClassification.from_pretrained(path, num_labels=2)
    using var model = rank.CreateModel(seed: 42, () => BertClassifier.FromPretrained(checkpointPath, numLabels: 2));
    // model_engine, optimizer, _, _ = deepspeed.initialize(model=model, model_parameters=model.parameters(), config="ds_config.json")
    using var engine = ZeroEngine.Initialize(model, DeepSpeedOptions.FromDeepSpeedConfig(Path.Combine(AppContext.BaseDirectory, "ds_config.json")));
    // sampler = DistributedSampler(train, num_replicas=world_size, rank=rank)
    var shard = train.Where((_, i) => i % rank.WorldSize == rank.Rank).ToArray();
    // loader = DataLoader(train, batch_size=16, sampler=sampler)
    var loader = shard.Chunk(engine.TrainMicroBatchSizePerGpu);

    // model.train()
    model.train();
    // for step, batch in enumerate(loader):
    foreach (var (batch, step) in loader.Select((batch, step) => (batch, step)))
    {
        using var scope = NewDisposeScope();
        // inputs = tokenizer(batch["text"], padding=True, truncation=True, max_length=64, return_tensors="pt")
        var inputs = tokenizer.Encode(batch.Select(row => row.Text).ToArray());
        var labels = tensor(batch.Select(row => long.Parse(row.Label)).ToArray());
        // loss = model_engine(**inputs, labels=labels).loss
        var loss = nn.functional.cross_entropy(engine.Forward(() => model.call(inputs)).to(ScalarType.Float32), labels);
        // model_engine.backward(loss)
        engine.Backward(loss);
        // model_engine.step()
        var result = engine.Step();
        // if rank == 0 and step % 25 == 0: print(...)
        if (rank.IsMainProcess && step % 25 == 0 && result is { } done)
            Console.WriteLine($"step {engine.GlobalStep}: loss {done.Loss:F4}, lr {done.LearningRate:G3}");
    }

    // model_engine.save_checkpoint("checkpoints", client_state={"epoch": 1})
    string saved = engine.SaveCheckpoint(Path.GetFullPath("bert-engine-loop/checkpoints"), clientState: new Dictionary<string, string> { ["epoch"] = "1" });

    // model.eval(); with torch.no_grad(): accuracy on the test set (rank 0)
    if (!rank.IsMainProcess)
        return;
    engine.RestoreFullPrecision();
    model.eval();
    using var noGrad = no_grad();
    int correct = 0;
    foreach (var batch in test.Chunk(64))
    {
        using var scope = NewDisposeScope();
        var predicted = model.call(tokenizer.Encode(batch.Select(row => row.Text).ToArray())).argmax(1).data<long>().ToArray();
        correct += predicted.Zip(batch, (p, row) => p == long.Parse(row.Label) ? 1 : 0).Sum();
    }
    Console.WriteLine($"Test accuracy {(double)correct / test.Length:P1} on {test.Length} sentences; checkpoint in {saved}.");
});
