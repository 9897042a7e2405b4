using Microsoft.ML.Data;
using Microsoft.ML.Zero.Config;

namespace Microsoft.ML.Zero.MLNet;

/// <summary>
/// The label's key values (class names, or numbers when the label was numeric), carried from training into the model
/// so that PredictedLabel maps back to the original values and Score has slot names.
/// </summary>
internal sealed class LabelKeyValues
{
    private static readonly PrimitiveDataViewType[] SupportedTypes =
    {
        TextDataViewType.Instance, NumberDataViewType.Single, NumberDataViewType.Double, NumberDataViewType.Int32,
        NumberDataViewType.Int64, NumberDataViewType.UInt32, NumberDataViewType.UInt64, BooleanDataViewType.Instance,
    };

    private readonly Array _values;

    private LabelKeyValues(PrimitiveDataViewType valueType, Array values)
    {
        ValueType = valueType;
        _values = values;
        Names = new ReadOnlyMemory<char>[values.Length];
        for (int i = 0; i < values.Length; i++)
            Names[i] = (values.GetValue(i) is ReadOnlyMemory<char> text ? text.ToString() : Convert.ToString(values.GetValue(i), System.Globalization.CultureInfo.InvariantCulture)).AsMemory();
    }

    public PrimitiveDataViewType ValueType { get; }

    public int Count => _values.Length;

    /// <summary>Each class as text, for the Score column's slot names.</summary>
    public ReadOnlyMemory<char>[] Names { get; }

    /// <summary>The key values of <paramref name="label"/>, or "0".."count-1" as text when the column carries none.</summary>
    public static LabelKeyValues FromLabel(DataViewSchema.Column label, int classCount)
    {
        var annotation = label.Annotations.Schema.GetColumnOrNull(AnnotationUtils.Kinds.KeyValues);
        if (annotation is null)
            return new LabelKeyValues(TextDataViewType.Instance, Enumerable.Range(0, classCount).Select(i => i.ToString().AsMemory()).ToArray());
        if (annotation.Value.Type is not VectorDataViewType { ItemType: PrimitiveDataViewType itemType } || !SupportedTypes.Contains(itemType))
        {
            throw new ArgumentOutOfRangeException(nameof(ZeroTrainerOptions.LabelColumnName),
                $"Label column '{label.Name}' has key values of type {annotation.Value.Type}; expected a vector of Text, a number type or Boolean.");
        }
        Array values = itemType.RawType switch
        {
            var t when t == typeof(ReadOnlyMemory<char>) => Read<ReadOnlyMemory<char>>(label),
            var t when t == typeof(float) => Read<float>(label),
            var t when t == typeof(double) => Read<double>(label),
            var t when t == typeof(int) => Read<int>(label),
            var t when t == typeof(long) => Read<long>(label),
            var t when t == typeof(uint) => Read<uint>(label),
            var t when t == typeof(ulong) => Read<ulong>(label),
            _ => Read<bool>(label),
        };
        if (values.Length != classCount)
            throw new ArgumentOutOfRangeException(nameof(ZeroTrainerOptions.LabelColumnName),
                $"Label column '{label.Name}' has {values.Length} key values for {classCount} classes; expected one per class.");
        return new LabelKeyValues(itemType, values);
    }

    /// <summary>
    /// Throws unless the validation set's label <paramref name="column"/> (of <paramref name="classes"/> keys) has the
    /// training data's keys: a label keyed by another MapValueToKey would number the classes differently, and the
    /// metrics would be silently wrong.
    /// </summary>
    public void RequireSameKeys(DataViewSchema.Column column, int classes)
    {
        var keys = FromLabel(column, classes).Names.Select(name => name.ToString());
        var trainingKeys = Names.Select(name => name.ToString());
        if (classes != Count || !keys.SequenceEqual(trainingKeys))
            throw new ArgumentException($"The validation set's label column '{column.Name}' has the keys [{string.Join(", ", keys)}]; the training data's has " +
                $"[{string.Join(", ", trainingKeys)}]. Key both with the same fitted MapValueToKey transformer.", "ValidationSet");
    }

    private static T[] Read<T>(DataViewSchema.Column label)
    {
        var buffer = default(VBuffer<T>);
        label.Annotations.GetValue(AnnotationUtils.Kinds.KeyValues, ref buffer);
        return buffer.DenseValues().ToArray();
    }

    /// <summary>Adds these values as the KeyValues annotation of a key column.</summary>
    public void AddTo(DataViewSchema.Annotations.Builder builder)
    {
        switch (_values)
        {
            case ReadOnlyMemory<char>[] v: Add(builder, v); break;
            case float[] v: Add(builder, v); break;
            case double[] v: Add(builder, v); break;
            case int[] v: Add(builder, v); break;
            case long[] v: Add(builder, v); break;
            case uint[] v: Add(builder, v); break;
            case ulong[] v: Add(builder, v); break;
            case bool[] v: Add(builder, v); break;
        }
    }

    private void Add<T>(DataViewSchema.Annotations.Builder builder, T[] values)
    {
        ValueGetter<VBuffer<T>> getter = (ref VBuffer<T> destination) => new VBuffer<T>(values.Length, values).CopyTo(ref destination);
        builder.Add(AnnotationUtils.Kinds.KeyValues, new VectorDataViewType(ValueType, values.Length), getter);
    }

    public void Save(BinaryWriter writer)
    {
        writer.Write(Array.IndexOf(SupportedTypes, ValueType));
        writer.Write(Count);
        for (int i = 0; i < Count; i++)
        {
            switch (_values)
            {
                case ReadOnlyMemory<char>[] v: writer.Write(v[i].ToString()); break;
                case float[] v: writer.Write(v[i]); break;
                case double[] v: writer.Write(v[i]); break;
                case int[] v: writer.Write(v[i]); break;
                case long[] v: writer.Write(v[i]); break;
                case uint[] v: writer.Write(v[i]); break;
                case ulong[] v: writer.Write(v[i]); break;
                case bool[] v: writer.Write(v[i]); break;
            }
        }
    }

    public static LabelKeyValues Load(BinaryReader reader, string source)
    {
        int typeIndex = reader.ReadInt32();
        if (typeIndex < 0 || typeIndex >= SupportedTypes.Length)
            throw new InvalidDataException($"The model's label key values have an unknown type code {typeIndex}.");
        var type = SupportedTypes[typeIndex];
        int count = reader.ReadInt32();
        // Each value takes at least a byte: the array is never larger than what the entry holds.
        long remaining = reader.BaseStream.Length - reader.BaseStream.Position;
        OptionCheck.RequireInFile(count >= 1 && count <= Math.Min(ModelLimits.MaxSize, remaining), source, "the label count", count,
            $"1 to {Math.Min(ModelLimits.MaxSize, remaining)}, no more values than the rest of the entry holds");
        Array values = type.RawType switch
        {
            var t when t == typeof(ReadOnlyMemory<char>) => ReadValues(count, () => reader.ReadString().AsMemory()),
            var t when t == typeof(float) => ReadValues(count, reader.ReadSingle),
            var t when t == typeof(double) => ReadValues(count, reader.ReadDouble),
            var t when t == typeof(int) => ReadValues(count, reader.ReadInt32),
            var t when t == typeof(long) => ReadValues(count, reader.ReadInt64),
            var t when t == typeof(uint) => ReadValues(count, reader.ReadUInt32),
            var t when t == typeof(ulong) => ReadValues(count, reader.ReadUInt64),
            _ => ReadValues(count, reader.ReadBoolean),
        };
        return new LabelKeyValues(type, values);
    }

    private static T[] ReadValues<T>(int count, Func<T> read)
    {
        var values = new T[count];
        for (int i = 0; i < count; i++)
            values[i] = read();
        return values;
    }
}
