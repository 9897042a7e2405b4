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

    public static MlpShape Load(BinaryReader reader)
    {
        int inputSize = reader.ReadInt32();
        var hidden = new int[reader.ReadInt32()];
        for (int i = 0; i < hidden.Length; i++)
            hidden[i] = reader.ReadInt32();
        return new MlpShape(inputSize, hidden, reader.ReadInt32(), (MlpActivation)reader.ReadInt32(), reader.ReadSingle());
    }
}
