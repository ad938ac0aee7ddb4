using System.Buffers;
using System.Globalization;
using System.Text.Json;
using Lodestar.Discovery;

namespace Lodestar.Consul.Internal;

/// <summary>
/// Reads the answer of <c>GET /v1/health/service/:service</c>: the body through a stream that refuses more than the
/// configured number of bytes, into pooled segments, then entry by entry, so that one entry that is
/// <see langword="null"/> or of the wrong shape is reported and skipped instead of failing the whole answer.
/// </summary>
/// <remarks>
/// <para>
/// Memory: the body occupies pooled 64 KB segments, so an answer over the limit costs about the limit once (the
/// segments then return to the pool), never the size of the answer. A declared Content-Length over the limit is
/// refused before anything is read.
/// </para>
/// <para>
/// Shape: Consul answers an array (<c>[]</c> when no instance passes), never <c>null</c>; anything else is not its
/// answer and is refused whole, rather than taken for an empty set that would replace the last good one. JSON that is
/// malformed anywhere (truncated, trailing data, nested deeper than 64) is refused whole too. Within a well-formed
/// array, an entry that is not an object, or whose fields have the wrong type or hold text that is not UTF-8, becomes
/// an entry with <see cref="HealthServiceEntry.Problem"/> set.
/// </para>
/// </remarks>
internal static class HealthAnswerReader
{
    private const int SegmentSize = 64 * 1024;
    private static readonly JsonReaderOptions s_readerOptions = new() { MaxDepth = 64 };

    /// <summary>Reads the answer in <paramref name="content"/> and hands each entry to <paramref name="onEntry"/> with its position.</summary>
    /// <returns>The number of entries.</returns>
    /// <exception cref="RegistryResponseTooLargeException">The answer is larger than <paramref name="maxBytes"/>.</exception>
    /// <exception cref="JsonException">The answer is not a JSON array, or is malformed.</exception>
    public static async Task<int> ReadAsync(HttpContent content, long maxBytes, string description, Action<int, HealthServiceEntry?> onEntry,
        CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength is { } length && length > maxBytes)
        {
            throw new RegistryResponseTooLargeException(string.Create(CultureInfo.InvariantCulture,
                $"{description}: the answer is larger than the limit of {maxBytes} bytes (Content-Length {length}); it was not read."))
            {
                Limit = maxBytes,
            };
        }

        var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        await using (stream.ConfigureAwait(false))
        {
            using var limited = RegistryStreams.Limit(stream, maxBytes, description);
            return await ReadAsync(limited, onEntry, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Reads a whole answer from <paramref name="stream"/> (which bounds its size) and hands each entry to <paramref name="onEntry"/>.</summary>
    /// <returns>The number of entries.</returns>
    public static async Task<int> ReadAsync(Stream stream, Action<int, HealthServiceEntry?> onEntry, CancellationToken cancellationToken)
    {
        var segments = new List<byte[]>();
        try
        {
            var last = 0;
            while (true)
            {
                if (segments.Count == 0 || last == SegmentSize)
                {
                    segments.Add(ArrayPool<byte>.Shared.Rent(SegmentSize));
                    last = 0;
                }

                var read = await stream.ReadAsync(segments[^1].AsMemory(last, SegmentSize - last), cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    return ReadEntries(Sequence(segments, last), onEntry);
                }

                last += read;
            }
        }
        finally
        {
            foreach (var segment in segments)
            {
                ArrayPool<byte>.Shared.Return(segment);
            }
        }
    }

    /// <summary>Reads the entries of a complete answer.</summary>
    /// <returns>The number of entries.</returns>
    public static int ReadEntries(ReadOnlySequence<byte> body, Action<int, HealthServiceEntry?> onEntry)
    {
        if (body.Length >= 3 && body.Slice(0, 3).ToArray() is [0xEF, 0xBB, 0xBF])
        {
            body = body.Slice(3);
        }

        if (IsBlank(body))
        {
            throw new JsonException("the answer is empty; Consul answers a JSON array.");
        }

        var reader = new Utf8JsonReader(body, s_readerOptions);
        reader.Read();

        if (reader.TokenType != JsonTokenType.StartArray)
        {
            throw new JsonException($"the answer is not a JSON array (it is {Describe(reader.TokenType)}).");
        }

        var count = 0;
        while (true)
        {
            if (!reader.Read())
            {
                throw new JsonException("the answer ends inside its array.");
            }

            if (reader.TokenType == JsonTokenType.EndArray)
            {
                break;
            }

            onEntry(count, ReadEntry(ref reader));
            count++;
        }

        // Reading past the array's end throws on anything but white space, and on an array that never closed.
        if (reader.Read())
        {
            throw new JsonException("the answer goes on after its array.");
        }

        return count;
    }

    private static HealthServiceEntry? ReadEntry(ref Utf8JsonReader reader)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Null:
                return null;
            case JsonTokenType.StartObject:
                var start = reader;
                try
                {
                    return JsonSerializer.Deserialize(ref reader, ConsulJsonContext.Default.HealthServiceEntry);
                }
                catch (JsonException ex)
                {
                    // A field of the wrong type: rewind to the entry's start and step over it. If the entry is not even
                    // well-formed JSON, Skip throws, and the whole answer is refused.
                    reader = start;
                    reader.Skip();
                    return new HealthServiceEntry { Problem = $"could not be read at {ex.Path ?? "$"} (a field of the wrong type, or text that is not UTF-8)" };
                }

            default:
                var kind = reader.TokenType;
                reader.Skip();
                return new HealthServiceEntry { Problem = $"is {Describe(kind)}, not an object" };
        }
    }

    private static bool IsBlank(ReadOnlySequence<byte> body)
    {
        foreach (var memory in body)
        {
            foreach (var value in memory.Span)
            {
                if (value is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
                {
                    return false;
                }
            }
        }

        return true;
    }

    private static string Describe(JsonTokenType kind) => kind switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => kind.ToString(),
    };

    private static ReadOnlySequence<byte> Sequence(List<byte[]> segments, int last)
    {
        if (segments.Count == 1)
        {
            return new ReadOnlySequence<byte>(segments[0], 0, last);
        }

        var first = new Segment(segments[0].AsMemory(0, SegmentSize), 0);
        var end = first;
        for (var i = 1; i < segments.Count; i++)
        {
            end = end.Append(segments[i].AsMemory(0, i == segments.Count - 1 ? last : SegmentSize));
        }

        return new ReadOnlySequence<byte>(first, 0, end, end.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public Segment Append(ReadOnlyMemory<byte> memory)
        {
            var next = new Segment(memory, RunningIndex + Memory.Length);
            Next = next;
            return next;
        }
    }
}
