using Microsoft.ML.Zero.Data;
using Microsoft.ML.Zero.Loop;
using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Models.Bert;

namespace Microsoft.ML.Zero;

/// <summary>
/// Fine-tunes a pretrained BERT to tag every word of a sentence (named entity recognition, part-of-speech tagging) as
/// Hugging Face's BertForTokenClassification, data-parallel on in-process ranks or one process per rank under mpirun.
/// The label is a vector of keys, one per word of the sentence split on spaces; the model appends PredictedLabel, a
/// vector of keys of the same length (<see cref="ZeroNamedEntityRecognitionOptions"/> says how words and long sentences are read).
/// </summary>
public sealed class ZeroNamedEntityRecognitionTrainer : IEstimator<ZeroNamedEntityRecognitionTransformer>
{
    private readonly TrainingRun _run;
    private readonly ZeroNamedEntityRecognitionOptions _options;

    internal ZeroNamedEntityRecognitionTrainer(MLContext mlContext, ZeroNamedEntityRecognitionOptions options)
    {
        _run = new TrainingRun(mlContext, nameof(ZeroNamedEntityRecognitionTrainer), options);
        _options = options;
    }

    /// <summary>Fine-tunes on <paramref name="input"/> and returns the tagger (rank 0's replica).</summary>
    public ZeroNamedEntityRecognitionTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        _options.Validate();
        var fineTuning = new BertFineTuning(_options, new ZeroNamedEntityRecognitionOptions());
        var columns = new WordLabelColumns(input, _options.Sentence1Column, _options.LabelColumn);
        var tags = LabelKeyValues.FromLabel(columns.Label, columns.TagCount);
        var outputs = new WordTagColumns(_options.PredictionColumnName, tags);
        var encoder = fineTuning.Encoder;
        var config = fineTuning.Checkpoint.Config;
        ZeroNamedEntityRecognitionTransformer TransformerOf(BertTokenClassifier model) =>
            new(new TokenClassificationScorer(model, encoder, _options.Sentence1ColumnName), outputs, _options.ScoringBatchSize);
        (int[] Ids, long[] TokenLabels)[] Encode(string[] words, int[] wordTags) => TokenEpochShard.TokenLabels(encoder.EncodeWords(words), wordTags);

        var replicas = fineTuning.Train(_run, tags.Names.Select(name => name.ToString()).ToArray(), $"a {columns.TagCount}-tag token classifier",
            generator => new BertTokenClassifier(config, columns.TagCount, generator), model => model.Encoder, columns.CountValidRows,
            (model, rows, rowCount, loss) => new TokenEpochShard(model, columns.ReadRows(rows, rowCount, Encode), encoder.PaddingId, loss),
            _run.TokenClassificationValidation<BertTokenClassifier>(outputs, TransformerOf), columns.CountTags,
            rowCount => columns.ReadRows(Enumerable.Range(0, checked((int)rowCount)).ToArray(), rowCount, (words, _) => encoder.EncodeWords(words).Windows.Sum(window => window.Ids.Length)));
        foreach (var replica in replicas.Skip(1))
            replica.Dispose();
        return TransformerOf(replicas[0]);
    }

    /// <summary>Checks the input columns and returns the schema the trained model will produce.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        _options.Validate();
        var columns = inputSchema.ToDictionary(c => c.Name);
        BertFineTuning.CheckTextColumns(_options, columns);
        return WordTagColumns.AppendShape(columns, _options.LabelColumn, _options.PredictionColumnName);
    }
}
