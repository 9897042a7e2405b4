using Onnx;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Models.Bert;

/// <summary>
/// A <see cref="BertClassifier"/> as the ONNX graph Hugging Face exports of BertForSequenceClassification have: inputs
/// <c>input_ids</c>, <c>attention_mask</c> and <c>token_type_ids</c> (int64 [batch, sequence], both dynamic), outputs
/// <c>logits</c> and <c>probabilities</c>; every weight an initializer under its Hugging Face name, in its Hugging Face
/// layout (Linear weights [out, in], transposed by a node that ONNX Runtime folds when it loads the graph).
/// </summary>
internal static class BertOnnxExport
{
    public const string InputIds = "input_ids", AttentionMask = "attention_mask", TokenTypeIds = "token_type_ids";
    private const string Sequence = "sequence";

    public static byte[] Build(BertClassifier model)
    {
        var config = model.Config;
        var weights = model.state_dict();
        var graph = new OnnxGraphBuilder("bert_for_sequence_classification");
        string Weight(string name) => graph.Weight(name, weights[name]);

        var int64 = TensorProto.Types.DataType.Int64;
        string ids = graph.Input(InputIds, int64, OnnxGraphBuilder.BatchDimension, Sequence);
        string mask = graph.Input(AttentionMask, int64, OnnxGraphBuilder.BatchDimension, Sequence);
        string types = graph.Input(TokenTypeIds, int64, OnnxGraphBuilder.BatchDimension, Sequence);

        // Embeddings: word + position (0 .. tokens-1) + token type, then LayerNorm.
        var tokens = graph.Node("Gather", new[] { graph.Node("Shape", new[] { ids }, "ids.shape"), graph.Int64s("one", new[] { 1L }, scalar: true) }, "tokens",
            OnnxGraphBuilder.Int("axis", 0));
        var positions = graph.Node("Range", new[] { graph.Int64s("zero", new[] { 0L }, scalar: true), tokens, graph.Int64s("one", new[] { 1L }, scalar: true) }, "positions");
        var sum = graph.Node("Add", new[]
        {
            graph.Node("Add", new[]
            {
                graph.Node("Gather", new[] { Weight("bert.embeddings.word_embeddings.weight"), ids }, "embeddings.words"),
                graph.Node("Gather", new[] { Weight("bert.embeddings.position_embeddings.weight"), positions }, "embeddings.positions"),
            }, "embeddings.words_positions"),
            graph.Node("Gather", new[] { Weight("bert.embeddings.token_type_embeddings.weight"), types }, "embeddings.token_types"),
        }, "embeddings.sum");
        var hidden = LayerNorm(graph, sum, "bert.embeddings.LayerNorm", config.LayerNormEps, Weight);

        // Padding gets the lowest float added to its attention scores: softmax gives it exactly 0, as a boolean mask does.
        var padding = graph.Node("Sub", new[] { graph.Float("one", 1), graph.Node("Cast", new[] { mask }, "mask.float", OnnxGraphBuilder.Int("to", (long)TensorProto.Types.DataType.Float)) }, "mask.padding");
        var scoreMask = graph.Node("Unsqueeze", new[]
        {
            graph.Node("Mul", new[] { padding, graph.Float("lowest", float.MinValue) }, "mask.scores"), graph.Int64s("mask_axes", new[] { 1L, 2L }),
        }, "mask.broadcast");

        for (int layer = 0; layer < config.NumHiddenLayers; layer++)
            hidden = Layer(graph, hidden, scoreMask, $"bert.encoder.layer.{layer}", config, Weight);

        // Pooler: the [CLS] token's hidden state through dense + tanh; then the classification head.
        var cls = graph.Node("Gather", new[] { hidden, graph.Int64s("zero", new[] { 0L }, scalar: true) }, "cls", OnnxGraphBuilder.Int("axis", 1));
        var pooled = graph.Node("Tanh", new[] { Gemm(graph, cls, "bert.pooler.dense", Weight) }, "pooled");
        var logits = Gemm(graph, pooled, "classifier", Weight);
        var batch = OnnxGraphBuilder.BatchDimension;
        graph.Output(OnnxOutputs.Logits, logits, TensorProto.Types.DataType.Float, batch, model.ClassCount);
        graph.Output(OnnxOutputs.Probabilities, graph.Node("Softmax", new[] { logits }, "softmax", OnnxGraphBuilder.Int("axis", 1)),
            TensorProto.Types.DataType.Float, batch, model.ClassCount);
        return graph.ToModel($"Microsoft.ML.Zero BERT text classifier: {config.NumHiddenLayers} layers, hidden {config.HiddenSize}, {model.ClassCount} classes.");
    }

    private static string Layer(OnnxGraphBuilder graph, string hidden, string scoreMask, string prefix, BertConfig config, Func<string, string> weight)
    {
        int heads = config.NumAttentionHeads, headSize = config.HiddenSize / heads;
        // [batch, tokens, hidden] -> [batch, heads, tokens, headSize]; keys go to [batch, heads, headSize, tokens].
        var headShape = graph.Int64s("head_shape", new[] { 0L, 0L, heads, headSize });
        string Heads(string name, params long[] perm) => graph.Node("Transpose", new[]
        {
            graph.Node("Reshape", new[] { Dense(graph, hidden, $"{prefix}.attention.self.{name}", weight), headShape }, $"{prefix}.{name}.heads"),
        }, $"{prefix}.{name}.transposed", OnnxGraphBuilder.Ints("perm", perm));
        var query = Heads("query", 0, 2, 1, 3);
        var key = Heads("key", 0, 2, 3, 1);
        var value = Heads("value", 0, 2, 1, 3);
        var scores = graph.Node("Add", new[]
        {
            graph.Node("Mul", new[] { graph.Node("MatMul", new[] { query, key }, $"{prefix}.scores.raw"), graph.Float("scale", 1 / MathF.Sqrt(headSize)) }, $"{prefix}.scores.scaled"),
            scoreMask,
        }, $"{prefix}.scores");
        var probabilities = graph.Node("Softmax", new[] { scores }, $"{prefix}.attention_probs", OnnxGraphBuilder.Int("axis", -1));
        var context = graph.Node("Reshape", new[]
        {
            graph.Node("Transpose", new[] { graph.Node("MatMul", new[] { probabilities, value }, $"{prefix}.context.heads") }, $"{prefix}.context.transposed",
                OnnxGraphBuilder.Ints("perm", 0, 2, 1, 3)),
            graph.Int64s("hidden_shape", new[] { 0L, 0L, config.HiddenSize }),
        }, $"{prefix}.context");

        var attended = Residual(graph, Dense(graph, context, $"{prefix}.attention.output.dense", weight), hidden, $"{prefix}.attention.output.LayerNorm", config, weight);
        var intermediate = Activation(graph, config.HiddenAct, Dense(graph, attended, $"{prefix}.intermediate.dense", weight));
        return Residual(graph, Dense(graph, intermediate, $"{prefix}.output.dense", weight), attended, $"{prefix}.output.LayerNorm", config, weight);
    }

    // The activations BertIntermediate builds from hidden_act.
    private static string Activation(OnnxGraphBuilder graph, string hiddenAct, string input) => hiddenAct switch
    {
        "relu" => graph.Node("Relu", new[] { input }, "relu"),
        "gelu" => OnnxActivations.GeluErf(graph, input),
        _ => OnnxActivations.GeluTanh(graph, input),
    };

    private static string Residual(OnnxGraphBuilder graph, string input, string residual, string layerNorm, BertConfig config, Func<string, string> weight) =>
        LayerNorm(graph, graph.Node("Add", new[] { input, residual }, $"{layerNorm}.input"), layerNorm, config.LayerNormEps, weight);

    private static string LayerNorm(OnnxGraphBuilder graph, string input, string prefix, double eps, Func<string, string> weight) =>
        graph.Node("LayerNormalization", new[] { input, weight($"{prefix}.weight"), weight($"{prefix}.bias") }, prefix,
            OnnxGraphBuilder.Int("axis", -1), OnnxGraphBuilder.FloatAttribute("epsilon", (float)eps));

    private static string Dense(OnnxGraphBuilder graph, string input, string prefix, Func<string, string> weight) =>
        graph.Linear(input, weight($"{prefix}.weight"), weight($"{prefix}.bias"), prefix);

    // A Linear layer on [batch, features] rows.
    private static string Gemm(OnnxGraphBuilder graph, string input, string prefix, Func<string, string> weight) =>
        graph.Node("Gemm", new[] { input, weight($"{prefix}.weight"), weight($"{prefix}.bias") }, prefix, OnnxGraphBuilder.Int("transB", 1));
}
