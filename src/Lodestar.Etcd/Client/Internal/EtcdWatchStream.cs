using System.Buffers;
using System.IO.Pipelines;
using System.Text.Json;

namespace Lodestar.Etcd.Client.Internal;

/// <summary>
/// Reads a <c>/v3/watch</c> response as it streams: the gateway writes one JSON object per message
/// (<c>{"result":{...}}</c> or <c>{"error":{...}}</c>), normally one per line and chunk. Each object is decoded as soon
/// as its last byte arrives, whatever the chunking; the response is never buffered whole.
/// </summary>
internal sealed class EtcdWatchStream : IAsyncDisposable
{
    private readonly HttpResponseMessage _response;
    private readonly string _address;
    private readonly Func<string, string> _redact;
    private PipeReader? _reader;
    private EtcdWatchResponse? _pushedBack;

    public EtcdWatchStream(HttpResponseMessage response, string address, Func<string, string> redact)
    {
        _response = response;
        _address = address;
        _redact = redact;
    }

    /// <summary>Gets the endpoint the stream comes from, for messages.</summary>
    public string Address => _address;

    /// <summary>Makes the next <see cref="ReadAsync"/> return <paramref name="message"/> again.</summary>
    public void Pushback(EtcdWatchResponse? message) => _pushedBack = message;

    /// <summary>Reads the next message.</summary>
    /// <returns>The message, or <see langword="null"/> when the server ended the stream.</returns>
    /// <exception cref="EtcdException">The stream broke, carried an error, or held malformed JSON.</exception>
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
                throw new EtcdException($"The watch stream from etcd at {_address} broke: {_redact(ex.Message)}", ex);
            }

            var buffer = result.Buffer;
            bool complete;
            JsonDocument document;
            try
            {
                complete = TryReadObject(ref buffer, out document);
            }
            catch (JsonException ex)
            {
                throw new EtcdException($"The watch stream from etcd at {_address} held malformed JSON: {_redact(ex.Message)}", ex);
            }

            if (complete)
            {
                _reader.AdvanceTo(buffer.Start);
                using (document)
                {
                    return Parse(document.RootElement);
                }
            }

            // Nothing complete yet: keep what we have, ask for more.
            _reader.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                return null;
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
    internal static bool TryReadObject(ref ReadOnlySequence<byte> buffer, out JsonDocument document)
    {
        document = null!;
        var reader = new Utf8JsonReader(buffer, isFinalBlock: false, state: default);
        if (!reader.Read())
        {
            return false;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            throw new JsonException($"expected a JSON object, found {reader.TokenType}");
        }

        if (!reader.TrySkip())
        {
            return false;
        }

        var end = buffer.GetPosition(reader.BytesConsumed);
        var start = buffer.Slice(0, end);
        document = JsonDocument.Parse(start);
        buffer = buffer.Slice(end);
        return true;
    }

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
                GrpcCode = code,
                IsInvalidToken = code == 16 || EtcdClient.IsTokenProblem(message),
            };
        }

        var body = root.TryGetProperty("result", out var result) ? result : root;
        var events = new List<EtcdEvent>();
        if (body.TryGetProperty("events", out var items) && items.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in items.EnumerateArray())
            {
                // PUT is enum value 0, which the gateway omits; DELETE is spelled out.
                var isDelete = EtcdClient.ReadString(item, "type") == "DELETE";
                var kv = item.TryGetProperty("kv", out var k) ? EtcdClient.ReadKeyValue(k) : new EtcdKeyValue(string.Empty, [], 0, 0);
                events.Add(new EtcdEvent(isDelete, kv));
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
}
