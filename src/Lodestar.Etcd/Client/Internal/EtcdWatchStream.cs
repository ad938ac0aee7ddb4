using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text.Json;
using Lodestar.Discovery;

namespace Lodestar.Etcd.Client.Internal;

/// <summary>
/// Reads a <c>/v3/watch</c> response as it streams: the gateway writes one JSON object per message
/// (<c>{"result":{...}}</c> or <c>{"error":{...}}</c>), normally one per line and chunk. Each object is decoded as soon
/// as its last byte arrives, whatever the chunking; the response is never buffered whole, and no single message may
/// grow past <see cref="EtcdOptions.MaxWatchMessageBytes"/>.
/// </summary>
/// <remarks>
/// The end of a message is found with a <see cref="Utf8JsonReader"/> whose state is kept between reads, so a message
/// that trickles in byte by byte is scanned once in all, not once per arriving chunk.
/// </remarks>
internal sealed class EtcdWatchStream : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly string _address;
    private readonly Func<string, string> _redact;
    private readonly long _maxMessageBytes;
    private PipeReader? _reader;
    private EtcdWatchResponse? _pushedBack;

    // Scanning state of the message being received: the reader's state and how far into the buffer it has got.
    private JsonReaderState _scanState;
    private long _scanned;

    public EtcdWatchStream(HttpResponseMessage response, string address, Func<string, string> redact, long maxMessageBytes)
    {
        _response = response;
        _address = address;
        _redact = redact;
        _maxMessageBytes = maxMessageBytes;
    }

    /// <summary>Gets the endpoint the stream comes from, for messages.</summary>
    public string Address => _address;

    /// <summary>Makes the next <see cref="ReadAsync"/> return <paramref name="message"/> again.</summary>
    public void Pushback(EtcdWatchResponse? message) => _pushedBack = message;

    /// <summary>Reads the next message.</summary>
    /// <returns>The message, or <see langword="null"/> when the server ended the stream between messages.</returns>
    /// <exception cref="EtcdException">The stream broke, carried an error, ended inside a message, or held malformed JSON.</exception>
    /// <exception cref="RegistryResponseTooLargeException">A message grew past the limit; the stream cannot be read further.</exception>
    public async Task<EtcdWatchResponse?> ReadAsync(CancellationToken cancellationToken)
    {
        if (_pushedBack is { } pushed)
        {
            _pushedBack = null;
            return pushed;
        }

        if (_reader is null)
        {
            var stream = await _response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            _reader = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 16 * 1024));
        }

        while (true)
        {
            ReadResult result;
            try
            {
                result = await _reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or HttpRequestException)
            {
                var cause = _redact(ex.Message);
                throw new EtcdException($"The watch stream from etcd at {_address} broke: {cause}") { Address = _address, Cause = cause };
            }

            var buffer = result.Buffer;
            long end;
            try
            {
                end = FindMessageEnd(buffer);
            }
            catch (JsonException ex)
            {
                throw Malformed(ex);
            }

            if (end >= 0)
            {
                if (end > _maxMessageBytes)
                {
                    throw TooLarge();
                }

                var message = buffer.Slice(0, end);
                JsonDocument document;
                try
                {
                    document = JsonDocument.Parse(message);
                }
                catch (JsonException ex)
                {
                    throw Malformed(ex);
                }

                _reader.AdvanceTo(message.End);
                using (document)
                {
                    return Parse(document.RootElement);
                }
            }

            if (buffer.Length > _maxMessageBytes)
            {
                throw TooLarge();
            }

            // Nothing complete yet: keep what we have, ask for more.
            _reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                if (IsWhitespace(buffer))
                {
                    return null;
                }

                throw new EtcdException(string.Create(CultureInfo.InvariantCulture,
                    $"etcd at {_address} ended the watch stream in the middle of a message ({buffer.Length} bytes of it arrived)."))
                {
                    Address = _address,
                };
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_reader is not null)
        {
            await _reader.CompleteAsync().ConfigureAwait(false);
        }

        _response.Dispose();
    }

    /// <summary>Cuts one complete top-level JSON object off the front of <paramref name="buffer"/>, skipping whitespace before it.</summary>
    /// <returns>Whether a whole object was there; then <paramref name="document"/> holds it and <paramref name="buffer"/> the rest.</returns>
    internal static bool TryReadObject(ref ReadOnlySequence<byte> buffer, out JsonDocument document)
    {
        document = null!;
        JsonReaderState state = default;
        long scanned = 0;
        var end = FindObjectEnd(buffer, ref state, ref scanned);
        if (end < 0)
        {
            return false;
        }

        document = JsonDocument.Parse(buffer.Slice(0, end));
        buffer = buffer.Slice(end);
        return true;
    }

    /// <summary>
    /// Scans <paramref name="buffer"/> from <paramref name="scanned"/> on with the reader state left by the previous
    /// call, and returns the length of the first top-level object once its closing brace is in, or -1 (with the state
    /// saved) when more bytes are needed.
    /// </summary>
    private static long FindObjectEnd(ReadOnlySequence<byte> buffer, ref JsonReaderState state, ref long scanned)
    {
        var reader = new Utf8JsonReader(buffer.Slice(scanned), isFinalBlock: false, state);
        while (reader.Read())
        {
            if (reader.CurrentDepth != 0)
            {
                continue;
            }

            if (reader.TokenType == JsonTokenType.EndObject)
            {
                var end = scanned + reader.BytesConsumed;
                state = default;
                scanned = 0;
                return end;
            }

            if (reader.TokenType != JsonTokenType.StartObject)
            {
                throw new JsonException($"expected a JSON object, found {reader.TokenType}");
            }
        }

        scanned += reader.BytesConsumed;
        state = reader.CurrentState;
        return -1;
    }

    private static bool IsWhitespace(ReadOnlySequence<byte> buffer)
    {
        foreach (var segment in buffer)
        {
            foreach (var b in segment.Span)
            {
                if (b is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
                {
                    return false;
                }
            }
        }

        return true;
    }

    private long FindMessageEnd(ReadOnlySequence<byte> buffer) => FindObjectEnd(buffer, ref _scanState, ref _scanned);

    private EtcdException Malformed(JsonException ex)
        => new($"The watch stream from etcd at {_address} held malformed JSON: {_redact(ex.Message)}") { Address = _address };

    private RegistryResponseTooLargeException TooLarge()
        => new(string.Create(CultureInfo.InvariantCulture,
            $"etcd at {_address} sent a watch message larger than the limit of {_maxMessageBytes} bytes ({nameof(EtcdOptions)}.{nameof(EtcdOptions.MaxWatchMessageBytes)}); it was not read."))
        {
            Limit = _maxMessageBytes,
        };

    private EtcdWatchResponse Parse(JsonElement root)
    {
        if (root.TryGetProperty("error", out var error))
        {
            var message = EtcdClient.ReadString(error, "message") ?? EtcdClient.ReadString(error, "error") ?? "no details";
            var code = (int)EtcdClient.ReadInt64(error, "grpc_code");
            if (code == 0)
            {
                code = (int)EtcdClient.ReadInt64(error, "code");
            }

            throw new EtcdException($"The watch stream from etcd at {_address} reported an error: {_redact(message)}")
            {
                Address = _address,
                GrpcCode = code,
                IsInvalidToken = code == 16 || EtcdClient.IsTokenProblem(message),
            };
        }

        var body = root;
        if (root.TryGetProperty("result", out var result))
        {
            if (result.ValueKind != JsonValueKind.Object)
            {
                throw Shape($"a watch message whose 'result' is {DescribeKind(result.ValueKind)}, not an object");
            }

            body = result;
        }

        var events = new List<EtcdEvent>();
        if (body.TryGetProperty("events", out var items) && items.ValueKind != JsonValueKind.Null)
        {
            if (items.ValueKind != JsonValueKind.Array)
            {
                throw Shape($"a watch message whose 'events' is {DescribeKind(items.ValueKind)}, not an array");
            }

            foreach (var item in items.EnumerateArray())
            {
                events.Add(ReadEvent(item));
            }
        }

        return new EtcdWatchResponse(
            EtcdClient.ReadRevision(body),
            body.TryGetProperty("created", out var created) && created.ValueKind == JsonValueKind.True,
            body.TryGetProperty("canceled", out var canceled) && canceled.ValueKind == JsonValueKind.True,
            EtcdClient.ReadInt64(body, "compact_revision"),
            EtcdClient.ReadString(body, "cancel_reason") is { } reason ? _redact(reason) : null,
            events);
    }

    private static EtcdEvent ReadEvent(JsonElement item)
    {
        if (item.ValueKind != JsonValueKind.Object)
        {
            return new EtcdEvent(false, Unreadable($"is {DescribeKind(item.ValueKind)}, not an object"));
        }

        // PUT is enum value 0, which the gateway omits; DELETE is spelled out. Numbers are accepted as well.
        bool? isDelete = item.TryGetProperty("type", out var type) ? type.ValueKind switch
        {
            JsonValueKind.Null => false,
            JsonValueKind.String => TextOf(type) switch
            {
                "PUT" => false,
                "DELETE" => true,
                _ => null,
            },
            JsonValueKind.Number => type.TryGetInt32(out var number) ? number switch
            {
                0 => false,
                1 => true,
                _ => null,
            } : null,
            _ => null,
        } : false;

        if (!item.TryGetProperty("kv", out var kv) || kv.ValueKind != JsonValueKind.Object)
        {
            return new EtcdEvent(isDelete ?? false, Unreadable("has no kv object"));
        }

        var read = EtcdClient.ReadKeyValue(kv);
        if (isDelete is null && read.Problem is null)
        {
            read = read with { Problem = "has an event type that is neither PUT nor DELETE" };
        }

        return new EtcdEvent(isDelete ?? false, read);
    }

    private static EtcdKeyValue Unreadable(string problem) => new(string.Empty, [], 0, 0) { Problem = problem };

    /// <summary>
    /// Gets a JSON string's text, or <see langword="null"/> when it holds bytes that are not UTF-8 (which
    /// <see cref="JsonElement.GetString"/> would throw on): a server's bad bytes are the server's problem, reported as such.
    /// </summary>
    internal static string? TextOf(JsonElement element)
    {
        try
        {
            return element.GetString();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    internal static string DescribeKind(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.Object => "an object",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "nothing",
    };

    private EtcdException Shape(string what) => new($"etcd at {_address} sent {what}.") { Address = _address };
}
