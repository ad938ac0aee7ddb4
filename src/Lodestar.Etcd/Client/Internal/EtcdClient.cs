using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Lodestar.Discovery;
using Lodestar.Internal;
using Microsoft.Extensions.Logging;

namespace Lodestar.Etcd.Client.Internal;

/// <summary>
/// A lean client for etcd v3's JSON gateway (grpc-gateway): POST a JSON body to <c>/v3/...</c>, 64-bit integers
/// travel as strings, keys and values as base64. Handles username/password auth (token from
/// <c>/v3/auth/authenticate</c> sent in the <c>Authorization</c> header, renewed when etcd rejects it), TLS, and
/// fail-over between the members listed in <see cref="EtcdOptions.Address"/>.
/// Thread-safe; one instance serves every source and registration of a process.
/// </summary>
/// <remarks>
/// <para>Fail-over: every request goes to the current member. When it cannot be reached (an
/// <see cref="HttpRequestException"/>: connection refused or reset, TLS failure) the client moves on to the next member
/// and sends the request there at once, trying each member at most once per request; every request this client makes
/// (range, put, delete, lease calls, authenticate, opening a watch) is safe to repeat. When a request times out, the
/// next request goes to the next member, but this one fails: etcd may have applied it. The move is a compare-exchange
/// from the member that failed, so concurrent failures of one member move on by one member, not several.</para>
/// <para>Secrets: the password and tokens are never put into exception messages or logs. Whatever etcd (or a proxy in
/// front of it) sends back is passed through <see cref="Redact"/> before it is used: a <see cref="SecretRedactor"/>
/// that knows the password and the last few tokens (a rejected token may be echoed after it was replaced) and masks
/// credentials in recognisable forms. Transport exceptions are not kept as inner exceptions, since .NET quotes what the
/// server sent in some of them.</para>
/// <para>Size: every answer is read through a <see cref="LimitedStream"/> of <see cref="EtcdOptions.MaxRangeResponseBytes"/>,
/// each watch message is capped at <see cref="EtcdOptions.MaxWatchMessageBytes"/>, and error bodies at 64 KiB.</para>
/// </remarks>
internal sealed partial class EtcdClient : IDisposable
{
    /// <summary>The most bytes of an error body read for its message.</summary>
    internal const int MaxErrorBodyBytes = 64 * 1024;

    // Tokens a server may still echo: the current one and a few it replaced.
    private const int RememberedTokens = 4;

    private readonly HttpClient _http;
    private readonly EtcdOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _authenticating = new(1, 1);
    private readonly Uri[] _endpoints;
    private readonly string[] _displays;
    private readonly List<string> _recentTokens = [];
    private volatile SecretRedactor _redactor;
    private int _current;
    private volatile string? _token;

    public EtcdClient(EtcdOptions options, TimeProvider timeProvider, ILogger<EtcdClient> logger, HttpMessageHandler? handler = null)
    {
        _options = options;
        _timeProvider = timeProvider;
        _logger = logger;
        _endpoints = EtcdAddressList.Parse(options.Address);
        _displays = [.. _endpoints.Select(e => e.GetLeftPart(UriPartial.Authority))];
        _redactor = new SecretRedactor().Add(options.Password);
        _http = new HttpClient(handler ?? CreateHandler(options), disposeHandler: true)
        {
            // Watches stream for as long as they live; every other request gets RequestTimeout through its token.
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    /// <summary>
    /// Gets the endpoint requests go to now, for messages: scheme, host and port only. With several endpoints it is
    /// the one the client uses at this moment, which changes when a member fails.
    /// </summary>
    public string DisplayAddress => _displays[CurrentIndex];

    /// <summary>Gets every configured endpoint in order, for messages: scheme, host and port only.</summary>
    public IReadOnlyList<string> Endpoints => _displays;

    private int CurrentIndex => Volatile.Read(ref _current);

    public void Dispose()
    {
        _http.Dispose();
        _authenticating.Dispose();
    }

    /// <summary>Returns the key after the last key with <paramref name="prefix"/>: etcd's range end for a prefix.</summary>
    public static byte[] PrefixEnd(byte[] prefix)
    {
        var end = (byte[])prefix.Clone();
        for (var i = end.Length - 1; i >= 0; i--)
        {
            if (end[i] < 0xff)
            {
                end[i]++;
                return end[..(i + 1)];
            }
        }

        // Every byte is 0xff: the range runs to the end of the keyspace, which etcd spells as a single zero byte.
        return [0];
    }

    /// <summary>Reads every key under <paramref name="prefix"/>.</summary>
    /// <returns>The keys, the revision they were read at, and the member that answered.</returns>
    /// <exception cref="EtcdException">The request failed, or the answer is not a range answer.</exception>
    /// <exception cref="RegistryResponseTooLargeException">The answer is larger than <see cref="EtcdOptions.MaxRangeResponseBytes"/>.</exception>
    public async Task<EtcdRangeResult> RangePrefixAsync(string prefix, CancellationToken cancellationToken)
    {
        var key = Encoding.UTF8.GetBytes(prefix);
        var body = new JsonObject
        {
            ["key"] = Convert.ToBase64String(key),
            ["range_end"] = Convert.ToBase64String(PrefixEnd(key)),
        };
        using var answer = await PostAsync("v3/kv/range", body, cancellationToken, $" of '{prefix}'").ConfigureAwait(false);
        var root = answer.Root;
        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new EtcdException($"etcd at {answer.Address} answered v3/kv/range of '{prefix}' with {EtcdWatchStream.DescribeKind(root.ValueKind)}, not an object.") { Address = answer.Address };
        }

        var revision = ReadRevision(root);
        if (revision <= 0)
        {
            throw new EtcdException($"etcd at {answer.Address} answered v3/kv/range of '{prefix}' without a header.revision to watch from.") { Address = answer.Address };
        }

        var kvs = new List<EtcdKeyValue>();
        if (root.TryGetProperty("kvs", out var items) && items.ValueKind != JsonValueKind.Null)
        {
            if (items.ValueKind != JsonValueKind.Array)
            {
                throw new EtcdException($"etcd at {answer.Address} answered v3/kv/range of '{prefix}' with 'kvs' that is {EtcdWatchStream.DescribeKind(items.ValueKind)}, not an array.") { Address = answer.Address };
            }

            foreach (var item in items.EnumerateArray())
            {
                kvs.Add(ReadKeyValue(item));
            }
        }

        return new EtcdRangeResult(revision, kvs, answer.Address);
    }

    public async Task<EtcdKeyValue?> GetAsync(string key, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["key"] = Base64(key) };
        using var answer = await PostAsync("v3/kv/range", body, cancellationToken).ConfigureAwait(false);
        return answer.Root.ValueKind == JsonValueKind.Object && answer.Root.TryGetProperty("kvs", out var items) && items.ValueKind == JsonValueKind.Array && items.GetArrayLength() > 0
            ? ReadKeyValue(items[0])
            : null;
    }

    public async Task<long> PutAsync(string key, string value, long leaseId, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["key"] = Base64(key), ["value"] = Base64(value) };
        if (leaseId != 0)
        {
            body["lease"] = leaseId.ToString(CultureInfo.InvariantCulture);
        }

        using var answer = await PostAsync("v3/kv/put", body, cancellationToken).ConfigureAwait(false);
        return ReadRevision(answer.Root);
    }

    public async Task<long> DeleteAsync(string key, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["key"] = Base64(key) };
        using var answer = await PostAsync("v3/kv/deleterange", body, cancellationToken).ConfigureAwait(false);
        return ReadInt64(answer.Root, "deleted");
    }

    /// <summary>Grants a lease; etcd may round the TTL up to its minimum.</summary>
    /// <returns>The lease ID and the TTL etcd granted, in seconds.</returns>
    public async Task<(long Id, long Ttl)> GrantLeaseAsync(long ttlSeconds, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["TTL"] = ttlSeconds.ToString(CultureInfo.InvariantCulture) };
        using var answer = await PostAsync("v3/lease/grant", body, cancellationToken).ConfigureAwait(false);
        var root = answer.Root;
        var id = ReadInt64(root, "ID");
        if (id == 0)
        {
            throw new EtcdException($"etcd at {answer.Address} granted no lease ({Redact(ReadString(root, "error") ?? "no ID in the answer")}).");
        }

        return (id, ReadInt64(root, "TTL"));
    }

    /// <summary>Renews a lease once.</summary>
    /// <returns>The remaining TTL in seconds; 0 when the lease no longer exists (expired or revoked).</returns>
    public async Task<long> KeepAliveAsync(long leaseId, CancellationToken cancellationToken)
    {
        // The gateway maps the bidirectional LeaseKeepAlive stream to one request body and a stream of answers; one
        // request gets one answer, {"result":{"ID":..,"TTL":..}}, with TTL missing when the lease is gone.
        var body = new JsonObject { ["ID"] = leaseId.ToString(CultureInfo.InvariantCulture) };
        using var answer = await PostAsync("v3/lease/keepalive", body, cancellationToken).ConfigureAwait(false);
        var root = answer.Root;
        if (root.ValueKind == JsonValueKind.Object && root.TryGetProperty("error", out var error))
        {
            throw ToException("v3/lease/keepalive", answer.Address, HttpStatusCode.OK, error);
        }

        return root.ValueKind == JsonValueKind.Object && root.TryGetProperty("result", out var result) ? ReadInt64(result, "TTL") : 0;
    }

    /// <summary>Revokes a lease, deleting every key bound to it; a lease that no longer exists is not an error.</summary>
    public async Task RevokeLeaseAsync(long leaseId, CancellationToken cancellationToken)
    {
        var body = new JsonObject { ["ID"] = leaseId.ToString(CultureInfo.InvariantCulture) };
        try
        {
            using var answer = await PostAsync("v3/lease/revoke", body, cancellationToken).ConfigureAwait(false);
        }
        catch (EtcdException ex) when (ex.Message.Contains("lease not found", StringComparison.Ordinal))
        {
            Log.LeaseAlreadyGone(_logger, leaseId);
        }
    }

    /// <summary>
    /// Opens a watch on every key under <paramref name="prefix"/> from <paramref name="startRevision"/>, asking etcd for
    /// progress notifications (<c>progress_notify</c>) so that a silent stream can be told from a quiet one.
    /// </summary>
    /// <returns>The stream; its first message (normally <c>created</c>) has been read already.</returns>
    public async Task<EtcdWatchStream> WatchPrefixAsync(string prefix, long startRevision, CancellationToken cancellationToken)
    {
        var key = Encoding.UTF8.GetBytes(prefix);
        var body = new JsonObject
        {
            ["create_request"] = new JsonObject
            {
                ["key"] = Convert.ToBase64String(key),
                ["range_end"] = Convert.ToBase64String(PrefixEnd(key)),
                ["start_revision"] = startRevision.ToString(CultureInfo.InvariantCulture),
                ["progress_notify"] = true,
            },
        };

        var failover = new Failover(_displays);
        for (var attempt = 0; ; attempt++)
        {
            var token = await GetTokenAsync(failover, cancellationToken).ConfigureAwait(false);
            var (response, index) = await OnSomeEndpointAsync("v3/watch", failover, endpoint => OpenWatchAsync(endpoint, body, token, cancellationToken)).ConfigureAwait(false);
            var address = _displays[index];
            if (!response.IsSuccessStatusCode)
            {
                using (response)
                {
                    var failure = await ReadFailureAsync("v3/watch", address, response, cancellationToken).ConfigureAwait(false);
                    if (failure.IsInvalidToken && attempt == 0 && token is not null)
                    {
                        InvalidateToken(token, address);
                        continue;
                    }

                    throw failure;
                }
            }

            var stream = new EtcdWatchStream(response, address, Redact, _options.MaxWatchMessageBytes);
            EtcdWatchResponse? first;
            try
            {
                first = await stream.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                await stream.DisposeAsync().ConfigureAwait(false);
                throw;
            }

            if (first is { Canceled: true, CompactRevision: 0 } && IsTokenProblem(first.CancelReason) && attempt == 0 && token is not null)
            {
                // The gateway reports a rejected token inside the stream: created, then canceled with the reason.
                await stream.DisposeAsync().ConfigureAwait(false);
                InvalidateToken(token, address);
                continue;
            }

            stream.Pushback(first);
            return stream;
        }
    }

    /// <summary>Masks the password, the tokens this client was issued lately, and credentials in recognisable forms.</summary>
    public string Redact(string text) => _redactor.Redact(text) ?? string.Empty;

    internal static bool IsTokenProblem(string? reason)
        => reason is not null && (reason.Contains("invalid auth token", StringComparison.OrdinalIgnoreCase)
                                  || reason.Contains("auth token is expired", StringComparison.OrdinalIgnoreCase)
                                  || reason.Contains("Unauthenticated", StringComparison.Ordinal));

    /// <summary>Reads one <c>mvccpb.KeyValue</c>; never throws, but sets <see cref="EtcdKeyValue.Problem"/> on an entry it cannot use.</summary>
    internal static EtcdKeyValue ReadKeyValue(JsonElement item)
    {
        if (item.ValueKind != JsonValueKind.Object)
        {
            return new EtcdKeyValue(string.Empty, [], 0, 0) { Problem = $"is {EtcdWatchStream.DescribeKind(item.ValueKind)}, not an object" };
        }

        var key = string.Empty;
        string? problem = null;
        if (!item.TryGetProperty("key", out var k) || k.ValueKind == JsonValueKind.Null)
        {
            problem = "has no key";
        }
        else if (k.ValueKind != JsonValueKind.String)
        {
            problem = $"has a key that is {EtcdWatchStream.DescribeKind(k.ValueKind)}, not a base64 string";
        }
        else if (EtcdWatchStream.TextOf(k) is not { } keyText)
        {
            problem = "has a key that is not valid UTF-8";
        }
        else if (!TryFromBase64(keyText, out var keyBytes) || keyBytes.Length == 0)
        {
            problem = "has a key that is not valid base64";
        }
        else
        {
            key = Encoding.UTF8.GetString(keyBytes);
        }

        byte[] value = [];
        if (problem is null && item.TryGetProperty("value", out var v) && v.ValueKind != JsonValueKind.Null)
        {
            if (v.ValueKind != JsonValueKind.String)
            {
                problem = $"has a value that is {EtcdWatchStream.DescribeKind(v.ValueKind)}, not a base64 string";
            }
            else if (EtcdWatchStream.TextOf(v) is not { } valueText)
            {
                problem = "has a value that is not valid UTF-8";
            }
            else if (!TryFromBase64(valueText, out value))
            {
                problem = "has a value that is not valid base64";
                value = [];
            }
        }

        return new EtcdKeyValue(key, value, ReadInt64(item, "mod_revision"), ReadInt64(item, "lease")) { Problem = problem };
    }

    internal static bool TryFromBase64(string text, out byte[] bytes)
    {
        var buffer = new byte[(text.Length + 3) / 4 * 3];
        if (!Convert.TryFromBase64String(text, buffer, out var written))
        {
            bytes = [];
            return false;
        }

        bytes = written == buffer.Length ? buffer : buffer[..written];
        return true;
    }

    internal static long ReadRevision(JsonElement root)
        => root.ValueKind == JsonValueKind.Object && root.TryGetProperty("header", out var header) ? ReadInt64(header, "revision") : 0;

    internal static long ReadInt64(JsonElement element, string name)
    {
        if (element.ValueKind != JsonValueKind.Object || !element.TryGetProperty(name, out var value))
        {
            return 0;
        }

        return value.ValueKind switch
        {
            JsonValueKind.String => long.TryParse(EtcdWatchStream.TextOf(value), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var parsed) ? parsed : 0,
            JsonValueKind.Number => value.TryGetInt64(out var number) ? number : 0,
            _ => 0,
        };
    }

    internal static string? ReadString(JsonElement element, string name)
        => element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? EtcdWatchStream.TextOf(value) : null;

    private static string Base64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    private static SocketsHttpHandler CreateHandler(EtcdOptions options)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = options.RequestTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            // Watches are long-lived streams; keep-alive pings would need HTTP/2, which the gateway serves only with TLS.
            MaxConnectionsPerServer = int.MaxValue,
        };

        if (!string.IsNullOrEmpty(options.CaCertificatePath))
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPemFile(options.CaCertificatePath);
            handler.SslOptions.RemoteCertificateValidationCallback = PrivateCaValidation.Create(roots);
        }

        if (!string.IsNullOrEmpty(options.ClientCertificatePath))
        {
            var certificate = X509Certificate2.CreateFromPemFile(options.ClientCertificatePath, options.ClientKeyPath);
            handler.SslOptions.ClientCertificates = new X509CertificateCollection { certificate };
        }

        return handler;
    }

    private HttpRequestMessage CreateRequest(int endpoint, string path, JsonObject body, string? token)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, new Uri(_endpoints[endpoint], path))
        {
            Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        if (token is not null)
        {
            // etcd's gateway takes the bare token, without a scheme.
            request.Headers.TryAddWithoutValidation("Authorization", token);
        }

        return request;
    }

    /// <param name="path">The gateway path.</param>
    /// <param name="body">The request.</param>
    /// <param name="cancellationToken">Cancels the request.</param>
    /// <param name="what">Words after the path naming what is read (for example <c> of 'orders/'</c>), for a too-large answer's message.</param>
    private async Task<EtcdAnswer> PostAsync(string path, JsonObject body, CancellationToken cancellationToken, string what = "")
    {
        var failover = new Failover(_displays);
        for (var attempt = 0; ; attempt++)
        {
            var token = await GetTokenAsync(failover, cancellationToken).ConfigureAwait(false);
            try
            {
                return await OnSomeEndpointAsync(path, failover, index => SendOnceAsync(index, path, body, token, what, cancellationToken)).ConfigureAwait(false);
            }
            catch (EtcdException ex) when (ex.IsInvalidToken && attempt == 0 && token is not null)
            {
                // Simple tokens live in each member's memory: they vanish when it restarts, and each member expires
                // them after --auth-token-ttl without use there, so the member a fail-over leads to may have dropped a
                // token the last one still took. Get a new one (from the current member), once.
                InvalidateToken(token, _displays[failover.LastUsed]);
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="send"/> against the current endpoint; when it finds that endpoint unreachable, moves on to
    /// the next and runs it again at once, each endpoint at most once per <paramref name="failover"/>.
    /// </summary>
    /// <exception cref="EtcdException">Every endpoint not yet tried was unreachable (the last one's failure, naming every endpoint tried), or the request failed otherwise.</exception>
    private async Task<T> OnSomeEndpointAsync<T>(string path, Failover failover, Func<int, Task<T>> send)
    {
        while (true)
        {
            var index = failover.Pick(CurrentIndex);
            try
            {
                return await send(index).ConfigureAwait(false);
            }
            catch (EtcdException ex) when (ex.IsUnreachable)
            {
                failover.Failed(index, ex);
                MoveOn(index, $"{path}: {ex.Cause ?? ex.Message}");
                if (!failover.HasUntried)
                {
                    if (_endpoints.Length == 1)
                    {
                        throw;
                    }

                    throw failover.Exhausted();
                }
            }
        }
    }

    /// <summary>Makes the endpoint after <paramref name="failed"/> the current one, unless another failure already moved on from it.</summary>
    private void MoveOn(int failed, string reason)
    {
        if (_endpoints.Length < 2)
        {
            return;
        }

        var next = (failed + 1) % _endpoints.Length;
        if (Interlocked.CompareExchange(ref _current, next, failed) == failed)
        {
            Log.EndpointFailed(_logger, _displays[failed], reason, _displays[next]);
        }
    }

    private async Task<EtcdAnswer> SendOnceAsync(int endpoint, string path, JsonObject body, string? token, string what, CancellationToken cancellationToken)
    {
        var address = _displays[endpoint];
        using var timeout = new CancellationTokenSource(_options.RequestTimeout, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        using var request = CreateRequest(endpoint, path, body, token);
        try
        {
            using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw await ReadFailureAsync(path, address, response, linked.Token).ConfigureAwait(false);
            }

            var description = $"etcd at {address}, {path}{what} ({nameof(EtcdOptions)}.{nameof(EtcdOptions.MaxRangeResponseBytes)})";
            var limit = _options.MaxRangeResponseBytes;
            if (response.Content.Headers.ContentLength is { } length && length > limit)
            {
                // Refused before a byte of the body is read.
                throw new RegistryResponseTooLargeException(string.Create(CultureInfo.InvariantCulture,
                    $"{description}: the answer is larger than the limit of {limit} bytes (Content-Length {length}); it was not read."))
                {
                    Limit = limit,
                };
            }

            var stream = await response.Content.ReadAsStreamAsync(linked.Token).ConfigureAwait(false);
            await using (stream.ConfigureAwait(false))
            {
                using var limited = RegistryStreams.Limit(stream, limit, description);
                var document = await JsonDocument.ParseAsync(limited, default, linked.Token).ConfigureAwait(false);
                return new EtcdAnswer(document, address);
            }
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // RequestTimeout ran out, or the handler's connect timeout (the same length) did. The request may have been
            // applied, so it is not sent again; the next one goes to the next member.
            var seconds = _options.RequestTimeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
            MoveOn(endpoint, $"no answer to {path} within {seconds} s");
            throw new EtcdException($"etcd at {address} did not answer {path} within {seconds} s.") { Address = address };
        }
        catch (HttpRequestException ex)
        {
            throw Unreachable(endpoint, path, ex);
        }
        catch (JsonException ex)
        {
            throw new EtcdException($"etcd at {address} sent malformed JSON for {path}{what}: {Redact(ex.Message)}") { Address = address };
        }
        catch (IOException ex) when (ex is not RegistryResponseTooLargeException)
        {
            // The answer broke off after its headers: etcd may have applied the request, so it is not sent again.
            var cause = Redact(ex.Message);
            throw new EtcdException($"etcd at {address} broke off its answer to {path}{what}: {cause}") { Address = address, Cause = cause };
        }
    }

    /// <summary>Sends the watch request to one endpoint and returns once the response headers are in.</summary>
    private async Task<(HttpResponseMessage Response, int Endpoint)> OpenWatchAsync(int endpoint, JsonObject body, string? token, CancellationToken cancellationToken)
    {
        using var request = CreateRequest(endpoint, "v3/watch", body, token);
        try
        {
            return (await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false), endpoint);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // Only the handler's connect timeout can end a watch request this way: nothing was sent.
            var seconds = _options.RequestTimeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
            var address = _displays[endpoint];
            throw new EtcdException($"etcd at {address} accepted no connection for v3/watch within {seconds} s.")
            {
                Address = address,
                Cause = $"no connection within {seconds} s",
                IsUnreachable = true,
            };
        }
        catch (HttpRequestException ex)
        {
            throw Unreachable(endpoint, "v3/watch", ex);
        }
    }

    /// <summary>Describes a request that got no answer: a failed TLS connection in words an operator can act on, else etcd unreachable.</summary>
    private EtcdException Unreachable(int endpoint, string path, HttpRequestException ex)
    {
        const string Options = nameof(EtcdOptions);
        var uri = _endpoints[endpoint];
        var address = _displays[endpoint];
        var host = uri.Host;
        var server = string.IsNullOrEmpty(_options.CaCertificatePath)
            ? $"it must be trusted by the system's certificate authorities and name host '{host}' (set {Options}.{nameof(EtcdOptions.CaCertificatePath)} for a private CA)"
            : $"it must be issued by a CA in {Options}.{nameof(EtcdOptions.CaCertificatePath)} and name host '{host}'";
        var hasClientCertificate = !string.IsNullOrEmpty(_options.ClientCertificatePath);
        var client = hasClientCertificate
            ? $"the certificate in {Options}.{nameof(EtcdOptions.ClientCertificatePath)} must be issued by a CA in etcd's --trusted-ca-file"
            : $"none is configured, and etcd run with --client-cert-auth needs one: set {Options}.{nameof(EtcdOptions.ClientCertificatePath)} and {Options}.{nameof(EtcdOptions.ClientKeyPath)}";
        var cause = Redact(Innermost(ex).Message);
        var message = TlsFailure.Describe(ex, uri, hasClientCertificate, server, client) is { } tls
            ? $"etcd at {address} could not be used for {path}. {Redact(tls)}"
            : $"etcd at {address} is unreachable for {path}: {Redact(ex.Message)}{(ex.InnerException is null ? string.Empty : $" ({cause})")}";

        // No inner exception: .NET quotes what the server sent in some messages (an invalid status or header line).
        return new EtcdException(message) { Address = address, Cause = cause, IsUnreachable = true };
    }

    private static Exception Innermost(Exception ex)
    {
        while (ex.InnerException is { } inner)
        {
            ex = inner;
        }

        return ex;
    }

    private async Task<EtcdException> ReadFailureAsync(string path, string address, HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var status = (int)response.StatusCode;
        byte[] bytes;
        try
        {
            bytes = await RegistryStreams.ReadAsync(response.Content, MaxErrorBodyBytes, $"etcd at {address}, error body of {path}", cancellationToken).ConfigureAwait(false);
        }
        catch (RegistryResponseTooLargeException)
        {
            return new EtcdException(string.Create(CultureInfo.InvariantCulture,
                $"etcd at {address} answered {path} with HTTP {status} and a body larger than {MaxErrorBodyBytes} bytes, which was not read."))
            {
                Address = address,
                IsInvalidToken = response.StatusCode == HttpStatusCode.Unauthorized,
            };
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            Log.FailureBodyUnreadable(_logger, path, Redact(ex.Message));
            bytes = [];
        }

        try
        {
            using var document = JsonDocument.Parse(bytes);
            if (document.RootElement.ValueKind == JsonValueKind.Object)
            {
                return ToException(path, address, response.StatusCode, document.RootElement);
            }
        }
        catch (JsonException)
        {
        }

        var excerpt = Excerpt(bytes);
        return new EtcdException(string.Create(CultureInfo.InvariantCulture,
            $"etcd at {address} answered {path} with HTTP {status}{(excerpt.Length > 0 ? ": " + excerpt : ".")}"))
        {
            Address = address,
            IsInvalidToken = response.StatusCode == HttpStatusCode.Unauthorized,
        };
    }

    /// <summary>Returns the start of a body that is not JSON (a proxy's error page), on one line and redacted.</summary>
    private string Excerpt(byte[] bytes)
    {
        const int Max = 200;
        var text = Encoding.UTF8.GetString(bytes, 0, Math.Min(bytes.Length, 4 * Max));
        var builder = new StringBuilder(Math.Min(text.Length, Max));
        foreach (var c in text)
        {
            builder.Append(char.IsControl(c) ? ' ' : c);
        }

        // Redact first: a secret cut in two by the length limit would no longer be recognised.
        var redacted = Redact(builder.ToString()).Trim();
        return redacted.Length <= Max ? redacted : string.Concat(redacted.AsSpan(0, Max), "...");
    }

    private EtcdException ToException(string path, string address, HttpStatusCode status, JsonElement error)
    {
        // grpc-gateway v1 errors: {"error":"...","message":"...","code":16}; streamed ones nest it: {"error":{...}}.
        var message = ReadString(error, "message") ?? ReadString(error, "error") ?? "no details";
        var code = (int)ReadInt64(error, "code");
        if (code == 0)
        {
            code = (int)ReadInt64(error, "grpc_code");
        }

        var invalidToken = code == 16 || status == HttpStatusCode.Unauthorized || IsTokenProblem(message);
        return new EtcdException($"etcd at {address} rejected {path}: {Redact(message)} (HTTP {((int)status).ToString(CultureInfo.InvariantCulture)}, code {code.ToString(CultureInfo.InvariantCulture)}).")
        {
            Address = address,
            GrpcCode = code,
            IsInvalidToken = invalidToken,
        };
    }

    /// <summary>Returns the token to send, authenticating first (at the current endpoint, failing over as any request) when there is none.</summary>
    private async ValueTask<string?> GetTokenAsync(Failover failover, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(_options.Username))
        {
            return null;
        }

        if (_token is { } token)
        {
            return token;
        }

        await _authenticating.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_token is { } fresh)
            {
                return fresh;
            }

            const string Path = "v3/auth/authenticate";
            var body = new JsonObject { ["name"] = _options.Username, ["password"] = _options.Password ?? string.Empty };
            using var answer = await OnSomeEndpointAsync(Path, failover, index => SendOnceAsync(index, Path, body, null, string.Empty, cancellationToken)).ConfigureAwait(false);
            var issued = ReadString(answer.Root, "token");
            if (string.IsNullOrEmpty(issued))
            {
                throw new EtcdException($"etcd at {answer.Address} authenticated user '{_options.Username}' but returned no token; is auth enabled?");
            }

            RememberToken(issued);
            _token = issued;
            Log.Authenticated(_logger, answer.Address, _options.Username);
            return issued;
        }
        catch (EtcdException ex) when (!ex.Message.Contains("user '", StringComparison.Ordinal))
        {
            throw new EtcdException($"etcd at {_displays[failover.LastUsed]} could not authenticate user '{_options.Username}': {ex.Message}")
            {
                Address = ex.Address ?? _displays[failover.LastUsed],
                Cause = ex.Cause,
                GrpcCode = ex.GrpcCode,
                IsUnreachable = ex.IsUnreachable,
            };
        }
        finally
        {
            _authenticating.Release();
        }
    }

    /// <summary>Adds a newly issued token to the secrets masked everywhere, forgetting all but the last few. Called under <see cref="_authenticating"/>.</summary>
    private void RememberToken(string token)
    {
        _recentTokens.Add(token);
        if (_recentTokens.Count > RememberedTokens)
        {
            _recentTokens.RemoveAt(0);
        }

        // A fresh redactor rather than Add on the old one: the list of tokens stays bounded however long the process runs.
        _redactor = new SecretRedactor().Add(_options.Password).Add([.. _recentTokens]);
    }

    private void InvalidateToken(string token, string address)
    {
        if (Interlocked.CompareExchange(ref _token, null, token) == token)
        {
            Log.TokenRejected(_logger, address);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Debug, "Authenticated to etcd at {Address} as user '{Username}'.", EventName = "EtcdAuthenticated")]
        public static partial void Authenticated(ILogger logger, string address, string username);

        [LoggerMessage(2, LogLevel.Debug, "etcd at {Address} rejected the auth token (expired or unknown); authenticating again.", EventName = "EtcdTokenRejected")]
        public static partial void TokenRejected(ILogger logger, string address);

        [LoggerMessage(3, LogLevel.Debug, "Lease {LeaseId} was already gone when revoked.", EventName = "EtcdLeaseAlreadyGone")]
        public static partial void LeaseAlreadyGone(ILogger logger, long leaseId);

        [LoggerMessage(4, LogLevel.Debug, "Could not read the error body of {Path}: {Reason}", EventName = "EtcdFailureBodyUnreadable")]
        public static partial void FailureBodyUnreadable(ILogger logger, string path, string reason);

        [LoggerMessage(5, LogLevel.Information, "etcd endpoint {Failed} failed ({Reason}); using {Next}", EventName = "EtcdEndpointFailed")]
        public static partial void EndpointFailed(ILogger logger, string failed, string reason, string next);
    }

    /// <summary>A JSON answer and the endpoint that gave it.</summary>
    private sealed class EtcdAnswer(JsonDocument document, string address) : IDisposable
    {
        public JsonElement Root => document.RootElement;

        /// <summary>Gets the endpoint that answered, for messages.</summary>
        public string Address => address;

        public void Dispose() => document.Dispose();
    }

    /// <summary>The endpoints one call has tried and found unreachable, so that it tries each at most once.</summary>
    private sealed class Failover(string[] endpoints)
    {
        private readonly bool[] _failed = new bool[endpoints.Length];
        private readonly List<int> _tried = [];
        private EtcdException? _last;

        /// <summary>Gets the endpoint picked last.</summary>
        public int LastUsed { get; private set; }

        /// <summary>Gets whether an endpoint is left that this call has not found unreachable.</summary>
        public bool HasUntried => _tried.Count < endpoints.Length;

        /// <summary>Returns <paramref name="current"/>, or the first endpoint after it that this call has not found unreachable.</summary>
        public int Pick(int current)
        {
            if (!HasUntried)
            {
                throw Exhausted();
            }

            var index = current;
            while (_failed[index])
            {
                index = (index + 1) % endpoints.Length;
            }

            LastUsed = index;
            return index;
        }

        public void Failed(int index, EtcdException error)
        {
            if (!_failed[index])
            {
                _failed[index] = true;
                _tried.Add(index);
            }

            _last = error;
        }

        /// <summary>Returns the last failure, its message naming every endpoint tried.</summary>
        public EtcdException Exhausted()
            => new($"{_last!.Message} Every etcd endpoint was tried and none could be reached: {string.Join(", ", _tried.Select(i => endpoints[i]))}.")
            {
                Address = _last.Address,
                Cause = _last.Cause,
                IsUnreachable = true,
            };
    }
}
