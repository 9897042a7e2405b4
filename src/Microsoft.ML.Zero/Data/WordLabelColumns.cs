using Microsoft.ML.Data;

namespace Microsoft.ML.Zero.Data;

/// <summary>
/// A sentence column and its word labels for token classification: the label a vector of keys (UInt32), one per word
/// of the sentence split on spaces (<see cref="Words"/>). Checks their types and every row's label length, and reads a
/// rank's rows encoded, with their labels as zero-based tags (-1 for a word whose key is missing, 0).
/// </summary>
internal sealed class WordLabelColumns
{
    private readonly IDataView _data;
    private readonly DataViewSchema.Column _sentence;
    private readonly DataViewSchema.Column _label;

    public WordLabelColumns(IDataView data, ColumnOption sentence, ColumnOption label)
    {
        _data = data;
        _sentence = ColumnChecks.Find(data.Schema, sentence, "sentence");
        if (_sentence.Type is not TextDataViewType)
            throw new ArgumentOutOfRangeException(sentence.Parameter, $"Sentence column '{sentence.ColumnName}' has type {_sentence.Type}; expected String (text).");
        _label = ColumnChecks.Find(data.Schema, label, "label");
        TagCount = CheckLabelType(label, _label.Type);
    }

    /// <summary>The tags, the cardinality of the label's keys.</summary>
    public int TagCount { get; }

    public DataViewSchema.Column Label => _label;

    /// <summary>A sentence's words: the text split on spaces, runs of spaces counting as one, so that an empty sentence has none.</summary>
    public static string[] Words(string sentence) => sentence.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The tag count of a label of type <paramref name="type"/>, or an error naming the column and the type expected.</summary>
    public static int CheckLabelType(ColumnOption label, DataViewType type)
    {
        if (type is VectorDataViewType { ItemType: KeyDataViewType key, Dimensions.Length: 1 })
            return ColumnChecks.CheckLabelType(label, key);
        throw new ArgumentOutOfRangeException(label.Parameter, $"Label column '{label.ColumnName}' has type {type}; expected a vector of keys (Vector<Key<UInt32>>), " +
            $"one per word of the sentence. Add mlContext.Transforms.Conversion.MapValueToKey(\"{label.ColumnName}\") over a vector of tag strings before the trainer.");
    }

    /// <summary>Counts the rows, failing on the first row whose label does not hold one key per word.</summary>
    public long CountValidRows()
    {
        long rows = 0;
        ReadAll((row, words, tags) => rows++);
        if (rows == 0)
            throw new InvalidOperationException("The training data has no rows.");
        return rows;
    }

    /// <summary>The labelled words per tag over every row, in key order (for balanced class weights).</summary>
    public long[] CountTags()
    {
        var counts = new long[TagCount];
        ReadAll((row, words, tags) =>
        {
            foreach (int tag in tags)
            {
                if (tag >= 0)
                    counts[tag]++;
            }
        });
        return counts;
    }

    /// <summary>
    /// Encodes (<paramref name="encode"/>: the words and their zero-based tags) the rows listed in
    /// <paramref name="rowsInOrder"/> (positions in cursor order), in that order.
    /// </summary>
    public T[] ReadRows<T>(int[] rowsInOrder, long rowCount, Func<string[], int[], T> encode)
    {
        var slotOfRow = new int[rowCount];
        Array.Fill(slotOfRow, -1);
        for (int slot = 0; slot < rowsInOrder.Length; slot++)
            slotOfRow[rowsInOrder[slot]] = slot;
        var encoded = new T[rowsInOrder.Length];
        ReadAll((row, words, tags) =>
        {
            if (row >= rowCount)
                throw new InvalidOperationException($"The training data has more rows than the {rowCount} counted at the start; it must not change during training.");
            int slot = slotOfRow[row];
            if (slot >= 0)
                encoded[slot] = encode(words, tags);
        });
        return encoded;
    }

    private delegate void RowAction(long row, string[] words, int[] tags);

    private void ReadAll(RowAction action)
    {
        using var cursor = _data.GetRowCursor(new[] { _sentence, _label });
        var getSentence = cursor.GetGetter<ReadOnlyMemory<char>>(_sentence);
        var getLabel = cursor.GetGetter<VBuffer<uint>>(_label);
        ReadOnlyMemory<char> sentence = default;
        VBuffer<uint> keys = default;
        long row = 0;
        while (cursor.MoveNext())
        {
            getSentence(ref sentence);
            getLabel(ref keys);
            var words = Words(sentence.ToString());
            if (keys.Length != words.Length)
                throw new InvalidOperationException($"Row {row}: label column '{_label.Name}' holds {keys.Length} keys, but sentence column '{_sentence.Name}' " +
                    $"has {words.Length} words (split on spaces); expected one key per word.");
            var tags = new int[words.Length];
            int i = 0;
            // A missing key (0) marks a word without a label: it is left out of the loss, as Hugging Face's -100.
            foreach (uint key in keys.DenseValues())
                tags[i++] = (int)key - 1;
            action(row, words, tags);
            row++;
        }
    }
}
