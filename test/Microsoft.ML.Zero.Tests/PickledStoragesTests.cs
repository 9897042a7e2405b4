using System.Collections;
using System.IO.Compression;
using Microsoft.ML.Zero.Models.Bert;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Microsoft.ML.Zero.Tests;

/// <summary>A pytorch_model.bin whose data entry is shorter than its storage is refused, not loaded with zeros.</summary>
[TestClass]
public sealed class PickledStoragesTests
{
    private static string Write(TempFolder folder)
    {
        TorchRuntimeForTests.Load();
        string path = folder.Combine("pytorch_model.bin");
        var state = new Dictionary<string, Tensor> { ["embeddings.weight"] = arange(64, dtype: ScalarType.Float32).reshape(8, 8) + 1, ["bias"] = ones(8) };
        PyTorchPickler.PickleStateDict(path, state);
        return path;
    }

    // Rewrites the zip with the first data entry cut to half its bytes.
    private static string Truncate(string path)
    {
        string cut = path + ".cut";
        using (var source = ZipFile.OpenRead(path))
        using (var target = ZipFile.Open(cut, ZipArchiveMode.Create))
        {
            bool done = false;
            foreach (var entry in source.Entries)
            {
                using var input = entry.Open();
                var bytes = new MemoryStream();
                input.CopyTo(bytes);
                byte[] data = bytes.ToArray();
                if (!done && entry.FullName.Contains("/data/", StringComparison.Ordinal))
                {
                    data = data[..(data.Length / 2)];
                    done = true;
                }
                using var output = target.CreateEntry(entry.FullName, CompressionLevel.NoCompression).Open();
                output.Write(data);
            }
        }
        return cut;
    }

    [TestMethod]
    public void ACompleteCheckpointPassesAndLoads()
    {
        using var folder = new TempFolder("zero-pickle-");
        string path = Write(folder);
        PickledStorages.RequireComplete(path);
        var state = PyTorchUnpickler.UnpickleStateDict(path).Cast<DictionaryEntry>().ToDictionary(e => (string)e.Key, e => (Tensor)e.Value!);
        Assert.AreEqual(64f, state["embeddings.weight"].max().item<float>());
    }

    [TestMethod]
    public void ADataEntryShorterThanItsStorageIsNamed()
    {
        using var folder = new TempFolder("zero-pickle-");
        string cut = Truncate(Write(folder));
        var error = Assert.ThrowsExactly<InvalidDataException>(() => PickledStorages.RequireComplete(cut));
        StringAssert.Contains(error.Message, "/data/");
        StringAssert.Contains(error.Message, "but its storage needs");
    }
}
