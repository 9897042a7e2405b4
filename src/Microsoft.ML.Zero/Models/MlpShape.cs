using Microsoft.ML.Zero.Config;

namespace Microsoft.ML.Zero.Models;

/// <summary>Everything needed to rebuild an <see cref="MlpClassifier"/> before loading its weights.</summary>
internal sealed record MlpShape(int InputSize, int[] HiddenSizes, int ClassCount, MlpActivation Activation, float Dropout)
{
    public void Save(BinaryWriter writer)
    {
        writer.Write(InputSize);
        writer.Write(HiddenSizes.Length);
        foreach (int size in HiddenSizes)
            writer.Write(size);
        writer.Write(ClassCount);
        writer.Write((int)Activation);
        writer.Write(Dropout);
    }

    /// <summary>Reads a shape that <see cref="Save"/> wrote; a hidden layer, activation or dropout out of range is an error naming <paramref name="source"/>.</summary>
    public static MlpShape Load(BinaryReader reader, string source)
    {
        int inputSize = reader.ReadInt32();
        int count = reader.ReadInt32();
        OptionCheck.RequireInFile(count is >= 0 and <= ModelLimits.MaxLayers, source, "the hidden-layer count", count, $"0 to {ModelLimits.MaxLayers}");
        var hidden = new int[count];
        for (int i = 0; i < hidden.Length; i++)
        {
            hidden[i] = reader.ReadInt32();
            OptionCheck.RequireInFile(hidden[i] is >= 1 and <= ModelLimits.MaxSize, source, $"HiddenLayerSizes[{i}]", hidden[i], $"1 to {ModelLimits.MaxSize}");
        }
        int classCount = reader.ReadInt32();
        var activation = (MlpActivation)reader.ReadInt32();
        OptionCheck.RequireInFile(Enum.IsDefined(activation), source, "Activation", (int)activation, string.Join(" or ", Enum.GetNames<MlpActivation>()));
        float dropout = reader.ReadSingle();
        OptionCheck.RequireInFile(dropout is >= 0 and < 1, source, "Dropout", dropout, "in [0, 1)");
        return new MlpShape(inputSize, hidden, classCount, activation, dropout);
    }
}
