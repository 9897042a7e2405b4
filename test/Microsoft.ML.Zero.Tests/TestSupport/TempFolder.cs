namespace Microsoft.ML.Zero.Tests.TestSupport;

/// <summary>A fresh folder under the system's temporary folder, deleted with everything in it on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    /// <param name="prefix">The start of the folder's name (e.g. "zero-mpi-"), so a folder left behind says which test made it.</param>
    public TempFolder(string prefix) => Path = Directory.CreateTempSubdirectory(prefix).FullName;

    /// <summary>The folder's full path.</summary>
    public string Path { get; }

    /// <summary>The path of <paramref name="name"/> inside the folder (nothing is created).</summary>
    public string Combine(params string[] name) => System.IO.Path.Combine([Path, .. name]);

    public void Dispose()
    {
        if (Directory.Exists(Path))
            Directory.Delete(Path, recursive: true);
    }
}
