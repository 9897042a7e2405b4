using System.Runtime.InteropServices;

namespace Microsoft.ML.Zero.Training;

/// <summary>
/// Writes that survive a crash or a power cut: a file's bytes are flushed to disk before a rename makes them visible
/// under their final name, and the folder is flushed after the rename so the new name itself is on disk. Without the
/// first, a file system may commit the rename before the data and leave a complete-looking name over empty blocks.
/// </summary>
internal static class DurableFiles
{
    /// <summary>Writes <paramref name="path"/> through <paramref name="write"/> into a temp file beside it, flushed, then renamed over it.</summary>
    public static void Replace(string path, Action<Stream> write)
    {
        string full = Path.GetFullPath(path), folder = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"Cannot save '{full}': the folder '{folder}' does not exist.");
        // In the same folder, so the rename stays on one file system and is atomic.
        string temp = Path.Combine(folder, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite))
            {
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            File.Delete(temp);
            throw;
        }
        SyncFolder(folder);
    }

    /// <summary>Flushes a file's bytes to disk.</summary>
    public static void SyncFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        stream.Flush(flushToDisk: true);
    }

    /// <summary>Flushes a folder's entries (names created, renamed or deleted in it) to disk.</summary>
    public static void SyncFolder(string path)
    {
        // Windows cannot open a folder as a file here, and NTFS journals renames itself.
        if (OperatingSystem.IsWindows())
            return;
        int fd = Open(path, 0 /* O_RDONLY */);
        if (fd < 0)
            throw new IOException($"Could not open the folder '{path}' to flush it to disk (errno {Marshal.GetLastPInvokeError()}).");
        try
        {
            // EINVAL: a file system that does not sync folders (some network and FUSE ones); nothing more can be done there.
            if (Fsync(fd) != 0 && Marshal.GetLastPInvokeError() is int errno && errno != EINVAL)
                throw new IOException($"Could not flush the folder '{path}' to disk (errno {errno}).");
        }
        finally
        {
            Close(fd);
        }
    }

    private const int EINVAL = 22;

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags);

    [DllImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static extern int Fsync(int fd);

    [DllImport("libc", EntryPoint = "close")]
    private static extern int Close(int fd);
}
