using Microsoft.ML.Zero.Config;
using Microsoft.ML.Zero.Models;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// What the scorers' loaders share: every size read from a model zip is checked before a model is built from it, and
/// the weights are counted against those sizes before any tensor is allocated, so a crafted 3 KB zip cannot ask for
/// gigabytes. A failed load disposes what it built.
/// </summary>
internal static class ModelZip
{
    public const string WeightsStreamName = "TorchWeights.bin";

    /// <summary>The zip entry <paramref name="entry"/> of the model being loaded, as error messages name it.</summary>
    public static string Source(ModelLoadContext ctx, string entry = "Model.key") => $"{ctx.Directory}/{entry}";

    /// <summary>
    /// Reads a transformer's fields with <paramref name="read"/>, after its version check. BinaryReader's and ML.NET's
    /// errors become an InvalidDataException naming the entry: a length or count that still fits the entry can leave too
    /// few bytes for the fields after it (EndOfStreamException), a string's length prefix is negative (IOException) or its
    /// encoding too long, or a string's id is not in the entry's table (FormatException, "Corrupt model file").
    /// </summary>
    public static T ReadFields<T>(ModelLoadContext ctx, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception exception) when (exception is IOException or FormatException)
        {
            throw new InvalidDataException($"'{Source(ctx)}' ends inside a field or holds a malformed one (truncated or damaged): {exception.Message}", exception);
        }
    }

    /// <summary>Reads a transformer's scoring batch size, checked as the options check it.</summary>
    public static int ReadScoringBatchSize(ModelLoadContext ctx)
    {
        int scoringBatchSize = ctx.Reader.ReadInt32();
        OptionCheck.RequireInFile(scoringBatchSize is >= 1 and <= ModelLimits.MaxSize, Source(ctx), "ScoringBatchSize", scoringBatchSize, $"1 to {ModelLimits.MaxSize}");
        return scoringBatchSize;
    }

    public static void RequireClassCount(int classCount, int labelCount, string source) =>
        OptionCheck.RequireInFile(classCount is >= 2 and <= ModelLimits.MaxSize && classCount == labelCount, source, "the class count", classCount,
            $"2 to {ModelLimits.MaxSize}, one class for each of the {labelCount} label values");

    /// <summary>
    /// Builds the model and loads its weights. The weights are counted first and must be the
    /// <paramref name="expectedElements"/> the model's sizes imply (for a user's module, known only once built).
    /// </summary>
    public static T LoadWeights<T>(ModelLoadContext ctx, long? expectedElements, Func<T> build) where T : nn.Module
    {
        string source = Source(ctx, WeightsStreamName);
        T? model = null;
        try
        {
            bool found = ctx.TryLoadBinaryStream(WeightsStreamName, reader =>
            {
                long elements = ModuleWeights.CountElements(reader, source);
                if (expectedElements is { } expected && elements != expected)
                    throw WrongCount(source, elements, expected);
                model = build();
                long built = expectedElements ?? model.state_dict().Values.Sum(tensor => tensor.numel());
                if (elements != built)
                    throw WrongCount(source, elements, built);
                try
                {
                    model.load(reader);
                }
                catch (ArgumentException exception)
                {
                    throw new InvalidDataException($"'{source}' does not fit the model: {exception.Message}", exception);
                }
            });
            if (!found)
                throw new InvalidDataException($"The model has no '{WeightsStreamName}' stream; the file is incomplete.");
            return model!;
        }
        catch
        {
            model?.Dispose();
            throw;
        }
    }

    private static InvalidDataException WrongCount(string source, long elements, long expected) =>
        new($"'{source}' holds {elements} weights, but the model's sizes imply {expected}: the weights do not belong to this model.");
}
