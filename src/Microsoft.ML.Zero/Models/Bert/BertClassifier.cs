using TorchSharp.Modules;
using static TorchSharp.torch;
using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.Distributed;
using Microsoft.ML.Zero.Tensors;

namespace Microsoft.ML.Zero.Models.Bert;

/// <summary>
/// Hugging Face's BertForSequenceClassification: pooled [CLS] -> dropout -> linear class logits. Train it with
/// <see cref="ZeroEngine"/> after <see cref="FromPretrained"/>; the ML.NET trainer uses it too.
/// </summary>
public sealed class BertClassifier : nn.Module<BertBatch, Tensor>
{
    private readonly BertModel bert;
    private readonly RankDropout dropout;
    private readonly Linear classifier;

    internal BertClassifier(BertConfig config, int classCount, Generator dropoutGenerator) : base(nameof(BertClassifier))
    {
        Config = config;
        ClassCount = classCount;
        bert = new BertModel(config, dropoutGenerator);
        dropout = new RankDropout(config.HiddenDropoutProb, dropoutGenerator);
        classifier = nn.Linear(config.HiddenSize, classCount);
        RegisterComponents();
    }

    internal BertConfig Config { get; }

    /// <summary>
    /// The elements of the state dict (what Module.save writes) of a classifier of <paramref name="config"/> with
    /// <paramref name="classCount"/> classes, known before one is built. It follows BertModel's Hugging Face layout:
    /// embeddings and their LayerNorm, per layer query/key/value/output, intermediate, output and two LayerNorms, the
    /// pooler, then the head; the model zip tests load a saved classifier against it.
    /// </summary>
    internal static long StateElementCount(BertConfig config, int classCount)
    {
        long hidden = config.HiddenSize, intermediate = config.IntermediateSize;
        long embeddings = ((long)config.VocabSize + config.MaxPositionEmbeddings + config.TypeVocabSize) * hidden + 2 * hidden;
        long layer = 4 * (hidden * hidden + hidden) + (hidden * intermediate + intermediate) + (intermediate * hidden + hidden) + 2 * 2 * hidden;
        return embeddings + config.NumHiddenLayers * layer + (hidden * hidden + hidden) + hidden * classCount + classCount;
    }

    /// <summary>The number of classes the classifier predicts.</summary>
    public int ClassCount { get; }

    /// <summary>The encoder, for loading a pretrained checkpoint into it.</summary>
    internal BertModel Encoder => bert;

    /// <summary>
    /// The pretrained encoder of a local Hugging Face folder (config.json, vocab.txt, model.safetensors or
    /// pytorch_model.bin) with a new, randomly initialized classification head of <paramref name="numLabels"/> classes.
    /// Dropout draws from a generator seeded with <paramref name="dropoutSeed"/>; by default the rank's number inside
    /// <see cref="ZeroEngine.Launch"/> (0 outside it), so ranks draw different masks.
    /// </summary>
    public static BertClassifier FromPretrained(string checkpointPath, int numLabels, ulong? dropoutSeed = null)
    {
        OptionCheck.Require(numLabels >= 2, nameof(numLabels), numLabels, "at least 2");
        TorchRuntime.EnsureLoaded();
        var checkpoint = BertCheckpoint.Open(checkpointPath);
        var model = new BertClassifier(checkpoint.Config, numLabels, new Generator(dropoutSeed ?? (ulong)(LaunchedRank.Communicator?.Rank ?? 0)));
        checkpoint.LoadInto(model.Encoder);
        return model;
    }

    /// <summary>Class logits [rows, <see cref="ClassCount"/>] of a batch.</summary>
    public override Tensor forward(BertBatch batch) => classifier.call(dropout.call(bert.call(batch).Pooled!));
}
