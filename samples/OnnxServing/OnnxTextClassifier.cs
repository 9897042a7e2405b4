using System.Text.Json;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Microsoft.ML.Tokenizers;

namespace Microsoft.ML.Zero.Samples.OnnxServing;

/// <summary>
/// Scores texts with a BERT classifier that <c>mlContext.Zero().ExportToOnnx</c> wrote: it tokenizes as model.json says
/// (the same WordPiece, lower-casing, maximum length and long-text handling the model was trained with) and runs
/// model.onnx in ONNX Runtime. One instance serves many threads at once: InferenceSession.Run is thread-safe.
/// </summary>
public sealed class OnnxTextClassifier : IDisposable
{
    private readonly InferenceSession _session;
    private readonly BertTokenizer _tokenizer;
    private readonly Manifest _manifest;

    /// <param name="folder">The export folder: model.onnx, model.json and vocab.txt.</param>
    /// <param name="options">ONNX Runtime's session options (threads, graph optimization); its defaults when null.</param>
    public OnnxTextClassifier(string folder, SessionOptions? options = null)
    {
        string manifestPath = Path.Combine(folder, "model.json");
        _manifest = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(manifestPath), new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower })
            ?? throw new InvalidDataException($"'{manifestPath}' is empty.");
        if (_manifest.FormatVersion != 1 || _manifest.Task != "text_classification")
            throw new InvalidDataException($"'{manifestPath}' describes a '{_manifest.Task}' model of format {_manifest.FormatVersion}; expected a text_classification model of format 1.");
        using (var vocabulary = File.OpenRead(Path.Combine(folder, _manifest.Vocabulary!)))
            _tokenizer = BertTokenizer.Create(vocabulary, new BertOptions { LowerCaseBeforeTokenization = _manifest.DoLowerCase!.Value });
        _session = options is null ? new InferenceSession(Path.Combine(folder, _manifest.Graph)) : new InferenceSession(Path.Combine(folder, _manifest.Graph), options);
    }

    /// <summary>The class names, in the order of <see cref="Probabilities"/>' values.</summary>
    public IReadOnlyList<string> Labels => _manifest.Labels;

    /// <summary>Class probabilities of each text (and its second text, for a pair model), scored in one batch.</summary>
    public float[][] Probabilities(IReadOnlyList<string> texts, IReadOnlyList<string>? secondTexts = null)
    {
        if (secondTexts is not null && secondTexts.Count != texts.Count)
            throw new ArgumentException($"{secondTexts.Count} second texts for {texts.Count} texts; a pair model needs one of each per row.", nameof(secondTexts));
        if (texts.Count == 0)
            return Array.Empty<float[]>();
        var windows = new List<(int[] Ids, int[] Types)>();
        var rowOfWindow = new List<int>();
        for (int row = 0; row < texts.Count; row++)
            foreach (var window in Encode(texts[row], secondTexts?[row]))
            {
                windows.Add(window);
                rowOfWindow.Add(row);
            }

        // One batch, padded to its longest window; padding is masked out.
        int length = windows.Max(window => window.Ids.Length);
        var ids = new DenseTensor<long>(new[] { windows.Count, length });
        var mask = new DenseTensor<long>(new[] { windows.Count, length });
        var types = new DenseTensor<long>(new[] { windows.Count, length });
        for (int w = 0; w < windows.Count; w++)
            for (int t = 0; t < length; t++)
            {
                bool real = t < windows[w].Ids.Length;
                ids[w, t] = real ? windows[w].Ids[t] : _tokenizer.PaddingTokenId;
                mask[w, t] = real ? 1 : 0;
                types[w, t] = real ? windows[w].Types[t] : 0;
            }
        using var results = _session.Run(new[]
        {
            NamedOnnxValue.CreateFromTensor("input_ids", ids),
            NamedOnnxValue.CreateFromTensor("attention_mask", mask),
            NamedOnnxValue.CreateFromTensor("token_type_ids", types),
        });
        var logits = results.First(result => result.Name == "logits").AsTensor<float>();

        // A row of several windows scores the mean of their logits, then a softmax, as the trained model does.
        int classes = Labels.Count;
        var sums = new double[texts.Count, classes];
        var counts = new int[texts.Count];
        for (int w = 0; w < windows.Count; w++)
        {
            counts[rowOfWindow[w]]++;
            for (int c = 0; c < classes; c++)
                sums[rowOfWindow[w], c] += logits[w, c];
        }
        return Enumerable.Range(0, texts.Count).Select(row => Softmax(Enumerable.Range(0, classes).Select(c => (float)(sums[row, c] / counts[row])).ToArray())).ToArray();
    }

    /// <summary>The most probable class of <paramref name="text"/> and its probability.</summary>
    public (string Label, float Probability) Predict(string text, string? secondText = null)
    {
        var probabilities = Probabilities(new[] { text }, secondText is null ? null : new[] { secondText })[0];
        int best = Array.IndexOf(probabilities, probabilities.Max());
        return (Labels[best], probabilities[best]);
    }

    /// <inheritdoc/>
    public void Dispose() => _session.Dispose();

    // [CLS] a [SEP] (b [SEP]) within max_sequence_length tokens: truncated (a pair longest-first), a's head and tail, or
    // windows over a; the last two keep b whole in every window.
    private IEnumerable<(int[] Ids, int[] Types)> Encode(string first, string? second)
    {
        var a = Tokenize(first);
        var b = second is null ? null : Tokenize(second);
        int maxLength = _manifest.MaxSequenceLength!.Value, special = b is null ? 2 : 3;
        var longText = _manifest.LongText!;
        if (longText.Handling == "truncate")
        {
            while (a.Count + (b?.Count ?? 0) > maxLength - special)
            {
                var longer = b is not null && b.Count > a.Count ? b : a;
                longer.RemoveAt(longer.Count - 1);
            }
            return new[] { Build(a, b) };
        }
        int budget = maxLength - special - (b?.Count ?? 0);
        if (a.Count <= budget)
            return new[] { Build(a, b) };
        if (budget < 1 || (longText.Handling == "sliding_windows" && budget <= longText.WindowStride))
            throw new ArgumentException($"A second text of {b!.Count} tokens leaves too few of the {maxLength} tokens for the first one.");
        if (longText.Handling == "head_and_tail")
        {
            int head = (budget + 2) / 4;
            return new[] { Build(a.GetRange(0, head).Concat(a.GetRange(a.Count - (budget - head), budget - head)).ToList(), b) };
        }
        var windows = new List<(int[], int[])>();
        for (int start = 0; windows.Count < longText.MaxWindowsPerRow; start += budget - longText.WindowStride)
        {
            int end = Math.Min(start + budget, a.Count);
            windows.Add(Build(a.GetRange(start, end - start), b));
            if (end == a.Count)
                break;
        }
        return windows;
    }

    private List<int> Tokenize(string text) => _tokenizer.EncodeToIds(text, addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true).ToList();

    private (int[] Ids, int[] Types) Build(List<int> a, List<int>? b)
    {
        var ids = _tokenizer.BuildInputsWithSpecialTokens(a, b).ToArray();
        return (ids, b is null ? new int[ids.Length] : _tokenizer.CreateTokenTypeIdsFromSequences(a, b).ToArray());
    }

    private static float[] Softmax(float[] logits)
    {
        float max = logits.Max();
        var exp = logits.Select(value => Math.Exp(value - max)).ToArray();
        double sum = exp.Sum();
        return exp.Select(value => (float)(value / sum)).ToArray();
    }

    private sealed record Manifest(int FormatVersion, string Task, string Graph, string? Vocabulary, string[] Labels, bool? DoLowerCase, int? MaxSequenceLength, LongTextHandling? LongText);

    private sealed record LongTextHandling(string Handling, int WindowStride, int MaxWindowsPerRow);
}
