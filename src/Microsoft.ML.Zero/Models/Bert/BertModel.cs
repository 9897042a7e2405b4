using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Models.Bert;

// A BERT encoder laid out like Hugging Face's BertModel: field names are the state-dict names
// (embeddings.word_embeddings.weight, encoder.layer.0.attention.self.query.weight, pooler.dense.weight, ...),
// so Hugging Face checkpoints load strictly. Dropout draws from each rank's own generator (RankDropout).

/// <summary>The inputs of one padded batch: token ids, token types and the attention mask (true = a real token), each [rows, tokens].</summary>
/// <param name="InputIds">WordPiece ids (int64 or int32), padded with the vocabulary's [PAD] id.</param>
/// <param name="TokenTypeIds">0 for the first sentence, 1 for the second (int64 or int32).</param>
/// <param name="AttentionMask">True where a real token is, false on padding; or an integer 1/0 mask, as Hugging Face's tokenizers give.</param>
public sealed record BertBatch(Tensor InputIds, Tensor TokenTypeIds, Tensor AttentionMask);

internal sealed class BertModel : nn.Module<BertBatch, (Tensor Sequence, Tensor? Pooled)>
{
    private readonly BertEmbeddings embeddings;
    private readonly BertEncoder encoder;
    private readonly BertPooler? pooler;
    private readonly int _maxPositions;

    /// <param name="config">The checkpoint's config.json.</param>
    /// <param name="dropoutGenerator">The rank's dropout generator.</param>
    /// <param name="addPoolingLayer">Whether the model has the [CLS] pooler (Hugging Face's <c>add_pooling_layer</c>):
    /// sequence classification reads it, token classification does not and has no pooler weights.</param>
    public BertModel(BertConfig config, Generator dropoutGenerator, bool addPoolingLayer = true) : base(nameof(BertModel))
    {
        _maxPositions = config.MaxPositionEmbeddings;
        embeddings = new BertEmbeddings(config, dropoutGenerator);
        encoder = new BertEncoder(config, dropoutGenerator);
        pooler = addPoolingLayer ? new BertPooler(config) : null;
        RegisterComponents();
    }

    /// <summary>Whether the model has the pooler, so a checkpoint's pooler weights load into it.</summary>
    public bool HasPooler => pooler is not null;

    public override (Tensor Sequence, Tensor? Pooled) forward(BertBatch batch)
    {
        var attend = CheckedMask(batch);
        var hidden = embeddings.call(batch.InputIds, batch.TokenTypeIds);
        // [batch, 1, 1, tokens]: every query position may attend to the real tokens of its row.
        var mask = attend.unsqueeze(1).unsqueeze(1);
        var sequence = encoder.call(hidden, mask);
        return (sequence, pooler?.call(sequence));
    }

    // A batch built by hand (from a Hugging Face tokenizer's output, say) is checked here, where a wrong type or shape
    // would otherwise fail deep in libtorch. An integer mask becomes a boolean one: attention would read any other
    // type as scores added to the logits, so a float 1/0 mask is refused rather than silently attending to padding.
    private Tensor CheckedMask(BertBatch batch)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var ids = Checked(batch.InputIds, nameof(BertBatch.InputIds));
        if (!IsIndex(ids.dtype) || ids.shape.Length != 2)
            throw Refused(nameof(BertBatch.InputIds), ids, "int64 or int32 token ids of shape [rows, tokens]");
        if (ids.shape[1] == 0)
            throw Refused(nameof(BertBatch.InputIds), ids, "at least one token ([CLS]) in each row");
        if (ids.shape[1] > _maxPositions)
            throw new ArgumentException($"BertBatch.InputIds holds {ids.shape[1]} tokens per row; the model has max_position_embeddings = {_maxPositions}.", nameof(batch));
        string shape = $"[{ids.shape[0]}, {ids.shape[1]}]";
        var types = Checked(batch.TokenTypeIds, nameof(BertBatch.TokenTypeIds));
        if (!IsIndex(types.dtype) || !types.shape.SequenceEqual(ids.shape))
            throw Refused(nameof(BertBatch.TokenTypeIds), types, $"int64 or int32 token types of InputIds' shape {shape}");
        var mask = Checked(batch.AttentionMask, nameof(BertBatch.AttentionMask));
        if (!(mask.dtype == ScalarType.Bool || IsInteger(mask.dtype)) || !mask.shape.SequenceEqual(ids.shape))
            throw Refused(nameof(BertBatch.AttentionMask), mask, $"a bool mask (true on real tokens) or an integer 1/0 mask of InputIds' shape {shape}");
        return mask.dtype == ScalarType.Bool ? mask : mask.ne(0);

        static Tensor Checked(Tensor? tensor, string name) =>
            tensor is null || tensor.IsInvalid ? throw new ArgumentException($"BertBatch.{name} is null or disposed.", nameof(batch)) : tensor;
        static bool IsIndex(ScalarType type) => type is ScalarType.Int64 or ScalarType.Int32;
        static bool IsInteger(ScalarType type) => type is ScalarType.Int64 or ScalarType.Int32 or ScalarType.Int16 or ScalarType.Int8 or ScalarType.Byte;
        static ArgumentException Refused(string name, Tensor tensor, string expected) =>
            new($"BertBatch.{name} is {tensor.dtype} [{string.Join(", ", tensor.shape)}]; expected {expected}.", nameof(batch));
    }
}

internal sealed class BertEmbeddings : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Embedding word_embeddings;
    private readonly Embedding position_embeddings;
    private readonly Embedding token_type_embeddings;
    private readonly LayerNorm LayerNorm;
    private readonly RankDropout dropout;

    public BertEmbeddings(BertConfig config, Generator dropoutGenerator) : base(nameof(BertEmbeddings))
    {
        word_embeddings = nn.Embedding(config.VocabSize, config.HiddenSize, padding_idx: config.PadTokenId);
        position_embeddings = nn.Embedding(config.MaxPositionEmbeddings, config.HiddenSize);
        token_type_embeddings = nn.Embedding(config.TypeVocabSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = new RankDropout(config.HiddenDropoutProb, dropoutGenerator);
        RegisterComponents();
    }

    public override Tensor forward(Tensor inputIds, Tensor tokenTypeIds)
    {
        var positions = arange(inputIds.shape[1], dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0);
        var sum = word_embeddings.call(inputIds) + position_embeddings.call(positions) + token_type_embeddings.call(tokenTypeIds);
        return dropout.call(LayerNorm.call(sum));
    }
}

internal sealed class BertEncoder : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly ModuleList<BertLayer> layer;

    public BertEncoder(BertConfig config, Generator dropoutGenerator) : base(nameof(BertEncoder))
    {
        layer = nn.ModuleList(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new BertLayer(config, dropoutGenerator)).ToArray());
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor mask)
    {
        foreach (var block in layer)
            hidden = block.call(hidden, mask);
        return hidden;
    }
}

internal sealed class BertLayer : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly BertAttention attention;
    private readonly BertIntermediate intermediate;
    private readonly BertOutput output;

    public BertLayer(BertConfig config, Generator dropoutGenerator) : base(nameof(BertLayer))
    {
        attention = new BertAttention(config, dropoutGenerator);
        intermediate = new BertIntermediate(config);
        output = new BertOutput(config, config.IntermediateSize, dropoutGenerator);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor mask)
    {
        var attended = attention.call(hidden, mask);
        return output.call(intermediate.call(attended), attended);
    }
}

internal sealed class BertAttention : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly BertSelfAttention self;
    private readonly BertOutput output;

    public BertAttention(BertConfig config, Generator dropoutGenerator) : base(nameof(BertAttention))
    {
        self = new BertSelfAttention(config);
        output = new BertOutput(config, config.HiddenSize, dropoutGenerator);
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden, Tensor mask) => output.call(self.call(hidden, mask), hidden);
}

/// <summary>
/// Multi-head self-attention through libtorch's fused scaled_dot_product_attention, except for bf16/fp16 on the CPU:
/// there its backward was slower than fp32's, and softmax(QK^T / sqrt(d) + mask) V as three operations took a quarter
/// of its time at 128 tokens (a third at 512) on this project's machines. Attention-probability dropout is not applied:
/// the fused kernel would draw it from the process-wide generator, which in-process ranks share.
/// </summary>
internal sealed class BertSelfAttention : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear query;
    private readonly Linear key;
    private readonly Linear value;
    private readonly int _heads;

    public BertSelfAttention(BertConfig config) : base(nameof(BertSelfAttention))
    {
        query = nn.Linear(config.HiddenSize, config.HiddenSize);
        key = nn.Linear(config.HiddenSize, config.HiddenSize);
        value = nn.Linear(config.HiddenSize, config.HiddenSize);
        _heads = config.NumAttentionHeads;
        RegisterComponents();
    }

    /// <summary>False: always the three operations, whatever the precision (to measure the fused kernel against them).</summary>
    internal bool Fused { get; set; } = true;

    public override Tensor forward(Tensor hidden, Tensor mask)
    {
        long batch = hidden.shape[0], tokens = hidden.shape[1], width = hidden.shape[2];
        Tensor Heads(Linear projection) => projection.call(hidden).view(batch, tokens, _heads, width / _heads).transpose(1, 2);
        bool unfused = !Fused || hidden.device_type == DeviceType.CPU && hidden.dtype is (ScalarType.BFloat16 or ScalarType.Float16);
        var context = unfused && mask.dtype == ScalarType.Bool
            ? Unfused(Heads(query), Heads(key), Heads(value), mask)
            : nn.functional.scaled_dot_product_attention(Heads(query), Heads(key), Heads(value), mask);
        return context.transpose(1, 2).reshape(batch, tokens, width);
    }

    // What scaled_dot_product_attention computes with a boolean mask, true where a key may be attended to.
    private static Tensor Unfused(Tensor query, Tensor key, Tensor value, Tensor mask)
    {
        var masked = zeros(mask.shape, query.dtype, query.device).masked_fill_(mask.logical_not(), double.NegativeInfinity);
        var scores = query.matmul(key.transpose(-2, -1)).mul_(1 / Math.Sqrt(query.shape[^1])).add_(masked);
        return scores.softmax(-1).matmul(value);
    }
}

/// <summary>Dense, dropout, then LayerNorm over the residual: both attention.output and the layer's output.</summary>
internal sealed class BertOutput : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly Linear dense;
    private readonly LayerNorm LayerNorm;
    private readonly RankDropout dropout;

    public BertOutput(BertConfig config, int inputSize, Generator dropoutGenerator) : base(nameof(BertOutput))
    {
        dense = nn.Linear(inputSize, config.HiddenSize);
        LayerNorm = nn.LayerNorm(config.HiddenSize, config.LayerNormEps);
        dropout = new RankDropout(config.HiddenDropoutProb, dropoutGenerator);
        RegisterComponents();
    }

    public override Tensor forward(Tensor input, Tensor residual) => LayerNorm.call(dropout.call(dense.call(input)) + residual);
}

internal sealed class BertIntermediate : nn.Module<Tensor, Tensor>
{
    private readonly Linear dense;
    private readonly nn.Module<Tensor, Tensor> activation;

    public BertIntermediate(BertConfig config) : base(nameof(BertIntermediate))
    {
        dense = nn.Linear(config.HiddenSize, config.IntermediateSize);
        activation = config.HiddenAct switch
        {
            "relu" => nn.ReLU(),
            "gelu" => nn.GELU(),
            _ => nn.GELU(GELU.Approximate.tanh),
        };
        RegisterComponents();
    }

    public override Tensor forward(Tensor hidden) => activation.call(dense.call(hidden));
}

internal sealed class BertPooler : nn.Module<Tensor, Tensor>
{
    private readonly Linear dense;

    public BertPooler(BertConfig config) : base(nameof(BertPooler))
    {
        dense = nn.Linear(config.HiddenSize, config.HiddenSize);
        RegisterComponents();
    }

    // The [CLS] token's final hidden state through dense + tanh, as BERT's next-sentence head was trained.
    public override Tensor forward(Tensor sequence) => dense.call(sequence.select(1, 0)).tanh();
}
