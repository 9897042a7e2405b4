using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Models;

/// <summary>
/// Reads the layout of a stream that TorchSharp's <c>Module.save</c> wrote, without building any tensor: a LEB128 entry
/// count, then per entry its name (a BinaryWriter string), a LEB128 dtype, rank and dimensions, and the raw elements.
/// A loader counts the weights first, so a file whose sizes do not match its weights is refused before a model is
/// built from those sizes.
/// </summary>
internal static class ModuleWeights
{
    /// <summary>
    /// The number of elements in all the stream's tensors; the stream is left at its start. Throws
    /// InvalidDataException naming <paramref name="source"/> when an entry is malformed or claims more bytes than the
    /// stream holds.
    /// </summary>
    public static long CountElements(BinaryReader reader, string source)
    {
        var stream = reader.BaseStream;
        long total = 0;
        try
        {
            long entries = Decode(reader);
            for (long i = 0; i < entries; i++)
            {
                string name = reader.ReadString();
                var dtype = (ScalarType)Decode(reader);
                long rank = Decode(reader);
                if (rank is < 0 or > 64)
                    throw Malformed(source, $"tensor '{name}' has rank {rank}");
                var shape = new long[rank];
                long elements = 1;
                for (int d = 0; d < rank; d++)
                {
                    shape[d] = Decode(reader);
                    // Factors and product kept within int (TorchSharp loads no larger tensor): the product cannot overflow.
                    elements = elements < 0 || shape[d] is < 0 or > int.MaxValue || elements * shape[d] > int.MaxValue ? -1 : elements * shape[d];
                }
                long bytes = elements < 0 ? -1 : elements * ElementSize(dtype, name, source);
                long remaining = stream.Length - stream.Position;
                if (bytes < 0 || bytes > remaining)
                    throw Malformed(source, $"tensor '{name}' of shape [{string.Join(", ", shape)}] needs more bytes than the {remaining} left in the entry");
                stream.Position += bytes;
                total += elements;
            }
        }
        catch (EndOfStreamException)
        {
            throw Malformed(source, "it ends inside a tensor's header (truncated?)");
        }
        catch (IOException exception)
        {
            // BinaryReader.ReadString of a name whose length prefix is negative.
            throw Malformed(source, $"a tensor's name is malformed ({exception.Message})");
        }
        if (stream.Position != stream.Length)
            throw Malformed(source, $"{stream.Length - stream.Position} byte(s) after its last tensor");
        stream.Position = 0;
        return total;
    }

    // TorchSharp's LEB128: seven bits a byte, low bits first, the high bit set on every byte but the last.
    private static long Decode(BinaryReader reader)
    {
        long value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            byte b = reader.ReadByte();
            value |= (long)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
                return value;
        }
        throw new EndOfStreamException();
    }

    private static long ElementSize(ScalarType dtype, string name, string source) => dtype switch
    {
        ScalarType.Byte or ScalarType.Int8 or ScalarType.Bool => 1,
        ScalarType.Int16 or ScalarType.Float16 or ScalarType.BFloat16 => 2,
        ScalarType.Int32 or ScalarType.Float32 => 4,
        ScalarType.Int64 or ScalarType.Float64 or ScalarType.ComplexFloat32 => 8,
        ScalarType.ComplexFloat64 => 16,
        _ => throw Malformed(source, $"tensor '{name}' has an unknown dtype {(int)dtype}"),
    };

    private static InvalidDataException Malformed(string source, string what) => new($"'{source}' is not a valid TorchSharp weights stream: {what}.");
}
