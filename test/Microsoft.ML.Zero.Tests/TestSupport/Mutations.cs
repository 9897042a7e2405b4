using System.Buffers.Binary;
using System.Text;
using System.Text.RegularExpressions;

namespace Microsoft.ML.Zero.Tests.TestSupport;

/// <summary>
/// Random damage to a valid file, for the readers' fuzz tests: bit flips, bytes and integers overwritten with boundary
/// values, truncation, ranges duplicated or deleted, and for JSON values replaced by boundary ones. Every choice comes
/// from the caller's seeded Random, so a case is reproduced by its seed alone.
/// </summary>
internal static partial class Mutations
{
    private static readonly byte[] BoundaryBytes = { 0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE, 0x81 };

    private static readonly long[] BoundaryIntegers =
    {
        0, 1, -1, 2, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, int.MaxValue, int.MinValue, uint.MaxValue, 1L << 30, 1L << 31, 1L << 32,
        long.MaxValue, long.MinValue, 1L << 62,
    };

    // Varints that are long, huge or run to 10 bytes: lengths and dims past any file.
    private static readonly byte[][] BoundaryVarints =
    {
        new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x0F }, new byte[] { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 },
        new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01 }, new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x07 },
        new byte[] { 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80 }, new byte[] { 0x00 },
    };

    /// <summary>
    /// A copy of <paramref name="seed"/> with one to four mutations. Positions fall in the first <paramref name="focus"/>
    /// bytes four times in five (a file's header, say), else anywhere.
    /// </summary>
    public static byte[] Bytes(byte[] seed, Random random, int? focus = null)
    {
        var bytes = new List<byte>(seed);
        int count = 1 + random.Next(4);
        for (int i = 0; i < count; i++)
            MutateOnce(bytes, random, focus);
        return bytes.ToArray();
    }

    private static int Position(List<byte> bytes, Random random, int? focus)
    {
        int limit = focus is { } f && random.Next(5) != 0 ? Math.Min(f, bytes.Count) : bytes.Count;
        return limit == 0 ? 0 : random.Next(limit);
    }

    private static void MutateOnce(List<byte> bytes, Random random, int? focus)
    {
        if (bytes.Count == 0)
        {
            bytes.Add(BoundaryBytes[random.Next(BoundaryBytes.Length)]);
            return;
        }
        int at = Position(bytes, random, focus);
        switch (random.Next(10))
        {
            case 0:
            case 1:
                bytes[at] ^= (byte)(1 << random.Next(8));
                break;
            case 2:
            case 3:
                bytes[at] = BoundaryBytes[random.Next(BoundaryBytes.Length)];
                break;
            case 4:
            {
                // A little-endian int32 or int64 with a boundary value, where a length, count or size may be.
                Span<byte> value = stackalloc byte[8];
                BinaryPrimitives.WriteInt64LittleEndian(value, BoundaryIntegers[random.Next(BoundaryIntegers.Length)]);
                int width = random.Next(2) == 0 ? 4 : 8;
                for (int i = 0; i < width && at + i < bytes.Count; i++)
                    bytes[at + i] = value[i];
                break;
            }
            case 5:
            {
                byte[] varint = BoundaryVarints[random.Next(BoundaryVarints.Length)];
                int replaced = Math.Min(1 + random.Next(2), bytes.Count - at);
                bytes.RemoveRange(at, replaced);
                bytes.InsertRange(at, varint);
                break;
            }
            case 6:
                bytes.RemoveRange(at, bytes.Count - at); // truncation
                break;
            case 7:
            {
                int length = Math.Min(1 + random.Next(64), bytes.Count - at);
                var range = bytes.GetRange(at, length);
                bytes.InsertRange(random.Next(bytes.Count + 1), range); // a range duplicated
                break;
            }
            case 8:
                bytes.RemoveRange(at, Math.Min(1 + random.Next(16), bytes.Count - at));
                break;
            default:
                bytes[at] = (byte)random.Next(256);
                break;
        }
    }

    // Values a reader must refuse or take in its stride: out of int and double range, negative, empty, the wrong kind,
    // a lone surrogate that System.Text.Json cannot turn into a string.
    private static readonly string[] BoundaryJson =
    {
        "0", "-1", "1", "-0", "0.5", "1.5", "-1.5", "2147483647", "2147483648", "-2147483649", "4294967296", "9223372036854775807",
        "9223372036854775808", "1e308", "1e999", "-1e999", "1e-400", "3.4e39", "\"auto\"", "\"\"", "\"\\ud800\"", "\"\\u0000\"", "\"..\"",
        "\"a/b\"", "null", "true", "false", "[]", "{}", "[1]", "[0,0]", "[-1,1]", "[4294967296,4294967296]", "[1e999,0]", "[\"auto\"]",
        "{\"enabled\":true}", "\"fp16\"", "\"bf16\"", "\"SGD\"", "\"Adam\"", "\"OneCycle\"", "\"WarmupLR\"", "\"F32\"", "\"BOOL\"",
        "\"F64\"", "\"I64\"",
    };

    [GeneratedRegex("""-?\d+(\.\d+)?([eE][+-]?\d+)?|"(\\.|[^"\\])*"|\btrue\b|\bfalse\b|\bnull\b|\[[^\[\]{}]*\]""")]
    private static partial Regex JsonToken();

    /// <summary>
    /// A copy of the JSON <paramref name="seed"/> with one to three values, keys or members changed: a token replaced by a
    /// boundary value, a member duplicated or removed, or (one time in four) bytes damaged as by <see cref="Bytes"/>.
    /// </summary>
    public static string Json(string seed, Random random)
    {
        if (random.Next(4) == 0)
            return Encoding.UTF8.GetString(Bytes(Encoding.UTF8.GetBytes(seed), random));
        string text = seed;
        int count = 1 + random.Next(3);
        for (int i = 0; i < count; i++)
        {
            var tokens = JsonToken().Matches(text);
            if (tokens.Count == 0)
                break;
            var token = tokens[random.Next(tokens.Count)];
            text = random.Next(6) switch
            {
                // The token (a key, a value or a short array) duplicated after a comma: a duplicate member or array element.
                0 => text.Insert(token.Index + token.Length, "," + token.Value),
                1 => text.Remove(token.Index, token.Length),
                _ => text[..token.Index] + BoundaryJson[random.Next(BoundaryJson.Length)] + text[(token.Index + token.Length)..],
            };
        }
        return text;
    }
}
