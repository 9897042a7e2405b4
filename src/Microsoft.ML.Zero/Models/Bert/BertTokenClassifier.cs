using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Models.Bert;

/// <summary>
/// Hugging Face's BertForTokenClassification: every token's final hidden state -> dropout -> linear tag logits. As
/// there, the encoder has no pooler (add_pooling_layer=False), so the state dict is bert.* without bert.pooler.*, and classifier.*.
/// </summary>
internal sealed class BertTokenClassifier : nn.Module<BertBatch, Tensor>
{
    private readonly BertModel bert;
    private readonly RankDropout dropout;
    private readonly Linear classifier;

    public BertTokenClassifier(BertConfig config, int tagCount, Generator dropoutGenerator) : base(nameof(BertTokenClassifier))
    {
        Config = config;
        TagCount = tagCount;
        bert = new BertModel(config, dropoutGenerator, addPoolingLayer: false);
        dropout = new RankDropout(config.HiddenDropoutProb, dropoutGenerator);
        classifier = nn.Linear(config.HiddenSize, tagCount);
        RegisterComponents();
    }

    public BertConfig Config { get; }

    /// <summary>The number of tags each token is classified into.</summary>
    public int TagCount { get; }

    /// <summary>The encoder, for loading a pretrained checkpoint into it.</summary>
    public BertModel Encoder => bert;

    /// <summary>The elements of the state dict: a sequence classifier's without the pooler's dense layer.</summary>
    public static long StateElementCount(BertConfig config, int tagCount) =>
        BertClassifier.StateElementCount(config, tagCount) - ((long)config.HiddenSize * config.HiddenSize + config.HiddenSize);

    /// <summary>Tag logits [rows, tokens, <see cref="TagCount"/>] of a batch.</summary>
    public override Tensor forward(BertBatch batch) => classifier.call(dropout.call(bert.call(batch).Sequence));
}
