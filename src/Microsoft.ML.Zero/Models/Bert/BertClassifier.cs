using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Models.Bert;

/// <summary>Hugging Face's BertForSequenceClassification: pooled [CLS] -> dropout -> linear class logits.</summary>
internal sealed class BertClassifier : nn.Module<BertBatch, Tensor>
{
    private readonly BertModel bert;
    private readonly RankDropout dropout;
    private readonly Linear classifier;

    public BertClassifier(BertConfig config, int classCount, Generator dropoutGenerator) : base(nameof(BertClassifier))
    {
        Config = config;
        ClassCount = classCount;
        bert = new BertModel(config, dropoutGenerator);
        dropout = new RankDropout(config.HiddenDropoutProb, dropoutGenerator);
        classifier = nn.Linear(config.HiddenSize, classCount);
        RegisterComponents();
    }

    public BertConfig Config { get; }

    public int ClassCount { get; }

    /// <summary>The encoder, for loading a pretrained checkpoint into it.</summary>
    public BertModel Encoder => bert;

    public override Tensor forward(BertBatch batch) => classifier.call(dropout.call(bert.call(batch).Pooled));
}
