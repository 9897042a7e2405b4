using System.IO.Compression;

namespace Microsoft.ML.Zero.Models.Bert;

/// <summary>
/// The storages a <c>pytorch_model.bin</c>'s pickle names, checked against the zip entries that hold their bytes:
/// an entry shorter than its storage would otherwise load with the rest of the tensor left zero.
/// </summary>
internal static class PickledStorages
{
    /// <summary>Throws <see cref="InvalidDataException"/> naming the entry when a storage's bytes are not all in the file.</summary>
    public static void RequireComplete(string path)
    {
        using var zip = ZipFile.OpenRead(path);
        var pickle = zip.Entries.FirstOrDefault(entry => entry.FullName == "data.pkl" || entry.FullName.EndsWith("/data.pkl", StringComparison.Ordinal))
            ?? throw new InvalidDataException($"'{path}' has no data.pkl: it is not a PyTorch checkpoint zip.");
        string prefix = pickle.FullName[..^"data.pkl".Length];
        List<(string Key, string Type, long Values)> storages;
        using (var stream = pickle.Open())
        using (var bytes = new MemoryStream())
        {
            stream.CopyTo(bytes);
            storages = PersistentIds(bytes.ToArray(), path);
        }
        foreach (var (key, type, values) in storages)
        {
            long bytes = checked(values * ElementBytes(type, path));
            var entry = zip.GetEntry($"{prefix}data/{key}")
                ?? throw new InvalidDataException($"'{path}': the pickle names storage '{key}', but the file has no entry '{prefix}data/{key}'.");
            if (entry.Length < bytes)
                throw new InvalidDataException($"'{path}': entry '{entry.FullName}' holds {entry.Length} bytes, but its storage needs {bytes} ({values} values of {type}).");
        }
    }

    private static long ElementBytes(string type, string path) => type switch
    {
        "DoubleStorage" or "LongStorage" => 8,
        "FloatStorage" or "IntStorage" => 4,
        "HalfStorage" or "BFloat16Storage" or "ShortStorage" => 2,
        "ByteStorage" or "CharStorage" or "BoolStorage" => 1,
        _ => throw new InvalidDataException($"'{path}': storage type '{type}' is not one a BERT checkpoint holds."),
    };

    private sealed record Global(string Name);

    private sealed class Mark;

    /// <summary>
    /// The persistent ids ('storage', storage type, key, location, values) of a torch.save pickle, found by running the
    /// few pickle opcodes that build them (strings, integers, globals, tuples, the memo) and stepping over the rest; no
    /// object the pickle describes is built.
    /// </summary>
    private static List<(string Key, string Type, long Values)> PersistentIds(byte[] pickle, string path)
    {
        var found = new List<(string, string, long)>();
        var stack = new List<object?>();
        var memo = new Dictionary<long, object?>();
        int at = 0;
        InvalidDataException Bad(string what) => new($"'{path}': data.pkl {what} at byte {at}.");
        ReadOnlySpan<byte> Take(long count)
        {
            if (count < 0 || at + count > pickle.Length)
                throw Bad("ends inside an opcode");
            var span = pickle.AsSpan(at, (int)count);
            at += (int)count;
            return span;
        }
        uint U32() => BitConverter.ToUInt32(Take(4));
        string Line()
        {
            int end = Array.IndexOf(pickle, (byte)'\n', at);
            if (end < 0)
                throw Bad("has a line without an end");
            string line = System.Text.Encoding.UTF8.GetString(pickle, at, end - at);
            at = end + 1;
            return line;
        }
        object?[] PopToMark()
        {
            int mark = stack.FindLastIndex(item => item is Mark);
            if (mark < 0)
                throw Bad("has no mark");
            var items = stack.Skip(mark + 1).ToArray();
            stack.RemoveRange(mark, stack.Count - mark);
            return items;
        }
        object? Pop()
        {
            if (stack.Count == 0)
                throw Bad("pops an empty stack");
            var top = stack[^1];
            stack.RemoveAt(stack.Count - 1);
            return top;
        }
        while (true)
        {
            if (at >= pickle.Length)
                throw Bad("has no STOP");
            byte opcode = pickle[at++];
            switch ((char)opcode)
            {
                case '.': return found;                                                  // STOP
                case '\x80': Take(1); break;                                           // PROTO
                case '\x95': Take(8); break;                                           // FRAME
                case '(': stack.Add(new Mark()); break;                                  // MARK
                case 'X': stack.Add(System.Text.Encoding.UTF8.GetString(Take(U32()))); break; // BINUNICODE
                case '\x8c': stack.Add(System.Text.Encoding.UTF8.GetString(Take(Take(1)[0]))); break; // SHORT_BINUNICODE
                case 'U': Take(Take(1)[0]); stack.Add(null); break;                      // SHORT_BINSTRING
                case 'T': Take(U32()); stack.Add(null); break;                           // BINSTRING
                case 'C': Take(Take(1)[0]); stack.Add(null); break;                      // SHORT_BINBYTES
                case 'B': Take(U32()); stack.Add(null); break;                           // BINBYTES
                case 'J': stack.Add((long)BitConverter.ToInt32(Take(4))); break;         // BININT
                case 'K': stack.Add((long)Take(1)[0]); break;                            // BININT1
                case 'M': stack.Add((long)BitConverter.ToUInt16(Take(2))); break;        // BININT2
                case '\x8a':                                                           // LONG1
                    var digits = Take(Take(1)[0]);
                    stack.Add(digits.Length is > 0 and <= 8 ? (long)new System.Numerics.BigInteger(digits) : null);
                    break;
                case 'G': Take(8); stack.Add(null); break;                               // BINFLOAT
                case 'c': stack.Add(new Global(Line() + "." + Line())); break;           // GLOBAL
                case '\x93': { var name = Pop(); var module = Pop(); stack.Add(new Global($"{module}.{name}")); break; } // STACK_GLOBAL
                case ')': stack.Add(Array.Empty<object?>()); break;                      // EMPTY_TUPLE
                case '\x85': stack.Add(new[] { Pop() }); break;                        // TUPLE1
                case '\x86': { var b = Pop(); var a = Pop(); stack.Add(new[] { a, b }); break; } // TUPLE2
                case '\x87': { var c = Pop(); var b = Pop(); var a = Pop(); stack.Add(new[] { a, b, c }); break; } // TUPLE3
                case 't': stack.Add(PopToMark()); break;                                 // TUPLE
                case 'Q':                                                                // BINPERSID
                    if (Pop() is object?[] { Length: 5 } id && id[0] as string == "storage" && id[1] is Global type && id[2] is string key && id[4] is long values)
                        found.Add((key, type.Name[(type.Name.LastIndexOf('.') + 1)..], values));
                    else
                        throw Bad("has a persistent id that is not a storage");
                    stack.Add(null);
                    break;
                case 'q': memo[Take(1)[0]] = stack.Count > 0 ? stack[^1] : throw Bad("memoizes an empty stack"); break; // BINPUT
                case 'r': memo[U32()] = stack.Count > 0 ? stack[^1] : throw Bad("memoizes an empty stack"); break;     // LONG_BINPUT
                case '\x94': memo[memo.Count] = stack.Count > 0 ? stack[^1] : throw Bad("memoizes an empty stack"); break; // MEMOIZE
                case 'h': stack.Add(memo.TryGetValue(Take(1)[0], out var short1) ? short1 : throw Bad("reads an unset memo")); break; // BINGET
                case 'j': stack.Add(memo.TryGetValue(U32(), out var long1) ? long1 : throw Bad("reads an unset memo")); break;        // LONG_BINGET
                case '}' or ']' or 'N' or '\x88' or '\x89': stack.Add(null); break;    // EMPTY_DICT, EMPTY_LIST, NONE, NEWTRUE, NEWFALSE
                case 'R': Pop(); Pop(); stack.Add(null); break;                          // REDUCE
                case 'b' or 'a': Pop(); break;                                           // BUILD, APPEND
                case 's': Pop(); Pop(); break;                                           // SETITEM
                case 'u' or 'e': PopToMark(); break;                                     // SETITEMS, APPENDS
                default: throw Bad($"has opcode 0x{opcode:x2}, which torch.save does not write");
            }
        }
    }
}
