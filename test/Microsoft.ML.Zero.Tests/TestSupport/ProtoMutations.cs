using System.Buffers.Binary;

namespace Microsoft.ML.Zero.Tests.TestSupport;

/// <summary>
/// Damage to an ONNX file at the level of its protobuf fields, which random bytes rarely reach: the file is parsed into
/// a tree (ModelProto, GraphProto, NodeProto, AttributeProto and TensorProto as messages, everything else as leaves),
/// one to three fields are removed, duplicated, renumbered or given boundary values, and the tree is written back with
/// lengths that fit, so the damage reaches the importer rather than stopping at the wire format.
/// </summary>
internal static class ProtoMutations
{
    private enum Kind { Model, Graph, Node, Attribute, Tensor, Leaf }

    private sealed class Field
    {
        public int Number;
        public int WireType;
        public ulong Scalar;
        public byte[] Bytes = Array.Empty<byte>();
        public List<Field>? Children;
        public Kind Kind = Kind.Leaf;

        public Field Clone() => new()
        {
            Number = Number, WireType = WireType, Scalar = Scalar, Bytes = Bytes, Kind = Kind,
            Children = Children?.Select(child => child.Clone()).ToList(),
        };
    }

    // The submessages the importer reads, by the message holding them and their field number.
    private static Kind ChildKind(Kind parent, int number) => (parent, number) switch
    {
        (Kind.Model, 7) => Kind.Graph,
        (Kind.Graph, 1) => Kind.Node,
        (Kind.Graph, 5) => Kind.Tensor,
        (Kind.Node, 5) => Kind.Attribute,
        (Kind.Attribute, 5) => Kind.Tensor,
        _ => Kind.Leaf,
    };

    // The field numbers each message's fields may be renumbered to: the ones its reader knows, and one it skips.
    private static readonly Dictionary<Kind, int[]> Numbers = new()
    {
        [Kind.Model] = new[] { 1, 2, 7, 8 },
        [Kind.Graph] = new[] { 1, 2, 5, 11, 12, 13 },
        [Kind.Node] = new[] { 1, 2, 3, 4, 5, 7 },
        [Kind.Attribute] = new[] { 1, 2, 3, 5, 8, 20 },
        [Kind.Tensor] = new[] { 1, 2, 4, 5, 7, 8, 9, 14 },
    };

    private static readonly ulong[] BoundaryVarints =
    {
        0, 1, 2, 3, 7, 0x7F, 0x80, int.MaxValue, (ulong)int.MaxValue + 1, uint.MaxValue, 1UL << 32, long.MaxValue, ulong.MaxValue, ulong.MaxValue - 1,
    };

    private static readonly float[] BoundaryFloats =
    {
        float.NaN, float.PositiveInfinity, float.NegativeInfinity, 0, -0f, -1, 1e-12f, float.MaxValue, float.Epsilon, 1e30f,
    };

    public static byte[] Mutate(byte[] model, Random random)
    {
        var root = Parse(model, Kind.Model);
        var all = new List<(List<Field> Parent, Field Field, Kind Owner)>();
        Collect(root, Kind.Model, all);
        var strings = all.Where(f => f.Field.WireType == 2 && f.Field.Children is null && f.Field.Bytes.Length < 64).Select(f => f.Field.Bytes).ToList();
        int count = 1 + random.Next(3);
        for (int i = 0; i < count && all.Count > 0; i++)
        {
            var (parent, field, owner) = all[random.Next(all.Count)];
            switch (random.Next(6))
            {
                case 0:
                    parent.Remove(field);
                    break;
                case 1:
                    parent.Insert(random.Next(parent.Count + 1), field.Clone());
                    break;
                case 2:
                    field.Number = Numbers[owner][random.Next(Numbers[owner].Length)];
                    break;
                default:
                    MutateValue(field, random, strings);
                    break;
            }
        }
        return Write(root);
    }

    private static void MutateValue(Field field, Random random, List<byte[]> strings)
    {
        switch (field.WireType)
        {
            case 0:
                field.Scalar = BoundaryVarints[random.Next(BoundaryVarints.Length)];
                break;
            case 5:
                field.Scalar = BitConverter.SingleToUInt32Bits(BoundaryFloats[random.Next(BoundaryFloats.Length)]);
                break;
            case 2 when field.Children is not null:
                // A message left empty, or its fields in reverse order.
                if (random.Next(2) == 0)
                    field.Children.Clear();
                else
                    field.Children.Reverse();
                break;
            case 2:
                field.Bytes = random.Next(4) switch
                {
                    0 when strings.Count > 0 => strings[random.Next(strings.Count)], // another name of the file
                    1 => Array.Empty<byte>(),
                    2 => field.Bytes[..(field.Bytes.Length / 2)],
                    _ => PackedWithBoundary(field.Bytes, random),
                };
                break;
        }
    }

    // A packed run of varints (dims, int64 data) with one element set to a boundary value, one added, or one removed.
    private static byte[] PackedWithBoundary(byte[] packed, Random random)
    {
        var values = new List<ulong>();
        for (int position = 0; position < packed.Length;)
        {
            if (!TryVarint(packed, ref position, out ulong value))
                return [.. packed, 0xFF];
            values.Add(value);
        }
        ulong boundary = BoundaryVarints[random.Next(BoundaryVarints.Length)];
        switch (random.Next(3))
        {
            case 0 when values.Count > 0: values[random.Next(values.Count)] = boundary; break;
            case 1 when values.Count > 0: values.RemoveAt(random.Next(values.Count)); break;
            default: values.Insert(random.Next(values.Count + 1), boundary); break;
        }
        var bytes = new List<byte>();
        foreach (ulong value in values)
            WriteVarint(bytes, value);
        return bytes.ToArray();
    }

    private static void Collect(List<Field> message, Kind kind, List<(List<Field>, Field, Kind)> all)
    {
        foreach (var field in message)
        {
            all.Add((message, field, kind));
            if (field.Children is not null)
                Collect(field.Children, field.Kind, all);
        }
    }

    private static List<Field> Parse(byte[] bytes, Kind kind)
    {
        var fields = new List<Field>();
        for (int position = 0; position < bytes.Length;)
        {
            if (!TryVarint(bytes, ref position, out ulong tag))
                throw new InvalidDataException("not a protobuf message");
            var field = new Field { Number = (int)(tag >> 3), WireType = (int)(tag & 7) };
            switch (field.WireType)
            {
                case 0:
                    if (!TryVarint(bytes, ref position, out field.Scalar))
                        throw new InvalidDataException("truncated varint");
                    break;
                case 1:
                    field.Scalar = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(position));
                    position += 8;
                    break;
                case 5:
                    field.Scalar = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(position));
                    position += 4;
                    break;
                case 2:
                    if (!TryVarint(bytes, ref position, out ulong length))
                        throw new InvalidDataException("truncated length");
                    field.Bytes = bytes[position..(position + (int)length)];
                    position += (int)length;
                    field.Kind = ChildKind(kind, field.Number);
                    if (field.Kind != Kind.Leaf)
                        field.Children = Parse(field.Bytes, field.Kind);
                    break;
                default:
                    throw new InvalidDataException($"wire type {field.WireType}");
            }
            fields.Add(field);
        }
        return fields;
    }

    private static byte[] Write(List<Field> message)
    {
        var bytes = new List<byte>();
        foreach (var field in message)
        {
            WriteVarint(bytes, (ulong)field.Number << 3 | (uint)field.WireType);
            switch (field.WireType)
            {
                case 0:
                    WriteVarint(bytes, field.Scalar);
                    break;
                case 1:
                    bytes.AddRange(BitConverter.GetBytes(field.Scalar));
                    break;
                case 5:
                    bytes.AddRange(BitConverter.GetBytes((uint)field.Scalar));
                    break;
                default:
                    byte[] body = field.Children is null ? field.Bytes : Write(field.Children);
                    WriteVarint(bytes, (ulong)body.Length);
                    bytes.AddRange(body);
                    break;
            }
        }
        return bytes.ToArray();
    }

    private static bool TryVarint(byte[] bytes, ref int position, out ulong value)
    {
        value = 0;
        for (int shift = 0; shift < 64 && position < bytes.Length; shift += 7)
        {
            byte b = bytes[position++];
            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
                return true;
        }
        return false;
    }

    private static void WriteVarint(List<byte> bytes, ulong value)
    {
        do
        {
            byte b = (byte)(value & 0x7F);
            value >>= 7;
            bytes.Add(value == 0 ? b : (byte)(b | 0x80));
        }
        while (value != 0);
    }
}
