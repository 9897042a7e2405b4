using Microsoft.ML.Zero.Distributed.Mpi;
using Microsoft.ML.Zero.MLNet;
using Microsoft.ML.Zero.Training;
namespace Microsoft.ML.Zero;

/// <summary>The entry point to Microsoft.ML.Zero's trainers, reached through <c>mlContext.Zero()</c>.</summary>
public sealed class ZeroCatalog
{
    private readonly MLContext _mlContext;

    internal ZeroCatalog(MLContext mlContext) => _mlContext = mlContext ?? throw new ArgumentNullException(nameof(mlContext));

    /// <summary>
    /// This process's rank when an MPI launcher (mpirun) started it, one process per rank; 0 when the ranks are
    /// threads of this process.
    /// </summary>
    public int ProcessRank => MpiLaunchEnvironment.Detect()?.Rank ?? 0;

    /// <summary>
    /// True in the process that holds rank 0. Under mpirun every process trains and gets the same model; let only
    /// this one save it or write reports.
    /// </summary>
    public bool IsMainProcess => ProcessRank == 0;

    /// <summary>
    /// The precision a trainer asked for <paramref name="precision"/> computes in on this machine: <see cref="ZeroPrecision.Auto"/>
    /// becomes Bf16 where the CPU computes bf16 natively and Fp32 elsewhere (the trainers log the reason); the others
    /// are returned as they are.
    /// </summary>
    public ZeroPrecision ResolvePrecision(ZeroPrecision precision) => PrecisionChoice.Resolve(precision).Precision;

    /// <summary>
    /// Cancels the MLContext's work, as ML.NET's own (internal) <c>CancelExecution</c> does: a running Fit stops on
    /// every rank at the next optimizer step, writes a last checkpoint when <see cref="ZeroTrainingOptions.CheckpointDirectory"/>
    /// is set (a later Fit with the same folder resumes from it), and throws <see cref="OperationCanceledException"/>.
    /// ML.NET's trainers that honour cancellation stop too. The context stays cancelled: train on with a new one.
    /// </summary>
    public void CancelExecution() => _mlContext.CancelExecution();

    /// <summary>
    /// A data-parallel (ZeRO stage 0) MLP classifier over a numeric feature vector and a key-typed label.
    /// </summary>
    public ZeroTrainer Trainer(ZeroTrainerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return new ZeroTrainer(_mlContext, options);
    }

    /// <summary>
    /// Fine-tunes a pretrained BERT (a local Hugging Face folder) as a text classifier. The parameters match
    /// <c>mlContext.MulticlassClassification.Trainers.TextClassification</c>, plus the checkpoint folder.
    /// </summary>
    public ZeroTextClassificationTrainer TextClassification(
        string labelColumnName = "Label",
        string scoreColumnName = "Score",
        string outputColumnName = "PredictedLabel",
        string sentence1ColumnName = "Sentence1",
        string? sentence2ColumnName = default,
        int batchSize = 32,
        int maxEpochs = 10,
        IDataView? validationSet = null,
        string? checkpointPath = null) =>
        TextClassification(new ZeroTextClassificationOptions
        {
            LabelColumnName = labelColumnName,
            ScoreColumnName = scoreColumnName,
            PredictionColumnName = outputColumnName,
            Sentence1ColumnName = sentence1ColumnName,
            Sentence2ColumnName = sentence2ColumnName,
            BatchSize = batchSize,
            MaxEpoch = maxEpochs,
            ValidationSet = validationSet,
            CheckpointPath = checkpointPath,
        });

    /// <summary>Fine-tunes a pretrained BERT as a text classifier with all options.</summary>
    public ZeroTextClassificationTrainer TextClassification(ZeroTextClassificationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return new ZeroTextClassificationTrainer(_mlContext, options);
    }

    /// <summary>
    /// Fine-tunes a pretrained BERT (a local Hugging Face folder) to score how alike two sentences are: a regression whose
    /// Score column <c>mlContext.Regression.Evaluate</c> reads. The parameters match
    /// <c>mlContext.Regression.Trainers.SentenceSimilarity</c>, plus the checkpoint folder.
    /// </summary>
    public ZeroSentenceSimilarityTrainer SentenceSimilarity(
        string labelColumnName = "Label",
        string scoreColumnName = "Score",
        string sentence1ColumnName = "Sentence1",
        string sentence2ColumnName = "Sentence2",
        int batchSize = 32,
        int maxEpochs = 10,
        IDataView? validationSet = null,
        string? checkpointPath = null) =>
        SentenceSimilarity(new ZeroSentenceSimilarityOptions
        {
            LabelColumnName = labelColumnName,
            ScoreColumnName = scoreColumnName,
            Sentence1ColumnName = sentence1ColumnName,
            Sentence2ColumnName = sentence2ColumnName,
            BatchSize = batchSize,
            MaxEpoch = maxEpochs,
            ValidationSet = validationSet,
            CheckpointPath = checkpointPath,
        });

    /// <summary>Fine-tunes a pretrained BERT for sentence similarity with all options.</summary>
    public ZeroSentenceSimilarityTrainer SentenceSimilarity(ZeroSentenceSimilarityOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return new ZeroSentenceSimilarityTrainer(_mlContext, options);
    }

    /// <summary>
    /// Fine-tunes a pretrained BERT (a local Hugging Face folder) to tag every word of a sentence: token classification,
    /// as named entity recognition or part-of-speech tagging. The sentence is split into words on spaces; the label is a
    /// vector of keys, one per word, and the model adds PredictedLabel, a vector of keys, one per word (words past
    /// MaxSequenceLength tokens get the missing key 0). The parameters match
    /// <c>mlContext.MulticlassClassification.Trainers.NamedEntityRecognition</c>, plus the checkpoint folder.
    /// </summary>
    public ZeroNamedEntityRecognitionTrainer NamedEntityRecognition(
        string labelColumnName = "Label",
        string outputColumnName = "PredictedLabel",
        string sentence1ColumnName = "Sentence",
        int batchSize = 32,
        int maxEpochs = 10,
        IDataView? validationSet = null,
        string? checkpointPath = null) =>
        NamedEntityRecognition(new ZeroNamedEntityRecognitionOptions
        {
            LabelColumnName = labelColumnName,
            PredictionColumnName = outputColumnName,
            Sentence1ColumnName = sentence1ColumnName,
            BatchSize = batchSize,
            MaxEpoch = maxEpochs,
            ValidationSet = validationSet,
            CheckpointPath = checkpointPath,
        });

    /// <summary>Fine-tunes a pretrained BERT for token classification with all options.</summary>
    public ZeroNamedEntityRecognitionTrainer NamedEntityRecognition(ZeroNamedEntityRecognitionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        return new ZeroNamedEntityRecognitionTrainer(_mlContext, options);
    }

    /// <summary>
    /// Token-level metrics of a token classifier's output: <paramref name="data"/> holds the label and the predicted
    /// label, both vectors of the same keys with one key per word (the output of a
    /// <see cref="ZeroNamedEntityRecognitionTransformer"/> on labelled data). ML.NET has no evaluator for key vectors.
    /// </summary>
    public ZeroTokenClassificationMetrics EvaluateNamedEntityRecognition(IDataView data, string labelColumnName = "Label",
        string predictedLabelColumnName = "PredictedLabel") =>
        ZeroTokenClassificationMetrics.Evaluate(data, labelColumnName, predictedLabelColumnName);

    /// <summary>
    /// Exports a trained classifier, or the Fit pipeline that holds it, to ONNX in <paramref name="directory"/> (created
    /// when missing), for serving without TorchSharp, from ONNX Runtime or ML.NET's <c>ApplyOnnxModel</c>:
    /// <list type="bullet">
    /// <item><c>model.onnx</c>, opset 17. A BERT classifier takes <c>input_ids</c>, <c>attention_mask</c> and
    /// <c>token_type_ids</c> (int64 [batch, sequence]), the MLP <c>features</c> (float [batch, features]); both give
    /// <c>logits</c> and <c>probabilities</c> (float [batch, classes]). Weights are initializers under their Hugging Face names.</item>
    /// <item><c>vocab.txt</c> (BERT): the WordPiece vocabulary, for Microsoft.ML.Tokenizers' BertTokenizer.</item>
    /// <item><c>model.json</c>: the label names in output order, the columns, and for BERT the lower-casing, the max length
    /// and the long-text handling (a row of several windows scores the mean of their logits).</item>
    /// </list>
    /// The graph covers the model alone: the pipeline's other transforms (MapValueToKey, MapKeyToValue) are not in it;
    /// model.json's labels map the outputs back. Each file is written whole or not at all. A model of a custom
    /// <see cref="ZeroModelFactory"/> throws <see cref="NotSupportedException"/>.
    /// </summary>
    public void ExportToOnnx(ITransformer model, string directory) => OnnxExport.ToDirectory(model, directory);

    /// <summary>Writes the model's ONNX graph alone (model.onnx of <see cref="ExportToOnnx(ITransformer, string)"/>) into <paramref name="stream"/>.</summary>
    public void ExportToOnnx(ITransformer model, Stream stream) => OnnxExport.ToStream(model, stream);
}
