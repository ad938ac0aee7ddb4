using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lodestar.Testing.Etcd;

/// <summary>
/// A fault-injecting stand-in for etcd's JSON gateway on 127.0.0.1 (Kestrel, HTTP/1.1): <c>/v3/kv/range</c>,
/// <c>/v3/watch</c> and <c>/v3/auth/authenticate</c>, for what a real etcd never sends. It keeps a small store with a
/// revision counter and an event history, answers ranges and watches the way etcd 3.4's gateway does (one JSON object
/// per watch message, 64-bit integers as strings, keys and values in base64, <c>created</c> first, a compacted start
/// revision answered with <c>compact_revision</c>), and lets a test replace any answer: garbage, truncated JSON, wrong
/// shapes, nulls, bad base64, oversized bodies, slow drips, stalled or cut streams, revisions going backwards,
/// credentials echoed back, and raw HTTP that Kestrel would never write.
/// </summary>
/// <remarks>
/// Not a faithful etcd beyond that: one member, no leases, no transactions, no progress notifications unless a test
/// sends one (<see cref="SendProgress"/>). Use the real etcd (<see cref="EtcdServer"/>) for protocol behaviour.
/// </remarks>
public sealed class FakeEtcdGateway : IAsyncDisposable
{
    private static readonly byte[] s_filler = Encoding.ASCII.GetBytes(new string('A', 16 * 1024));

    private readonly Lock _gate = new();
    private readonly SortedDictionary<string, Entry> _store = new(StringComparer.Ordinal);
    private readonly List<Change> _history = [];
    private readonly List<Watch> _watches = [];
    private readonly ConcurrentQueue<FakeEtcdRequest> _requests = new();
    private readonly ConcurrentQueue<FakeEtcdWatchRequest> _watchRequests = new();
    private readonly List<string> _issuedTokens = [];
    private readonly HashSet<string> _validTokens = new(StringComparer.Ordinal);
    private WebApplication? _app;
    private long _revision = 1;
    private string? _user;
    private string? _password;

    private FakeEtcdGateway()
    {
    }

    /// <summary>Gets the gateway's URL, <c>http://127.0.0.1:{port}</c>.</summary>
    public string Url { get; private set; } = string.Empty;

    /// <summary>Gets the store's current revision.</summary>
    public long Revision
    {
        get
        {
            lock (_gate)
            {
                return _revision;
            }
        }
    }

    /// <summary>Gets or sets the revision up to which history is compacted: a watch from at or below it is cancelled with <c>compact_revision</c>.</summary>
    public long CompactedRevision { get; set; }

    /// <summary>Gets every request received on the three paths, in order.</summary>
    public IReadOnlyCollection<FakeEtcdRequest> Requests => _requests;

    /// <summary>Gets every watch opened, in order, with the revision it asked to start from.</summary>
    public IReadOnlyCollection<FakeEtcdWatchRequest> WatchRequests => _watchRequests;

    /// <summary>Gets the number of watch streams open now.</summary>
    public int OpenWatches
    {
        get
        {
            lock (_gate)
            {
                return _watches.Count;
            }
        }
    }

    /// <summary>Gets the tokens <c>/v3/auth/authenticate</c> has issued, in order.</summary>
    public IReadOnlyList<string> IssuedTokens
    {
        get
        {
            lock (_gate)
            {
                return [.. _issuedTokens];
            }
        }
    }

    /// <summary>
    /// Gets or sets a replacement for range answers: return an answer to send it instead of the store's, or
    /// <see langword="null"/> to answer from the store.
    /// </summary>
    public Func<FakeEtcdRequest, FakeEtcdAnswer?>? RangeFault { get; set; }

    /// <summary>Gets or sets a replacement for authenticate answers, as <see cref="RangeFault"/>.</summary>
    public Func<FakeEtcdRequest, FakeEtcdAnswer?>? AuthenticateFault { get; set; }

    /// <summary>
    /// Gets or sets a replacement for the start of a watch: return an answer to send it (with status 200, its body
    /// is written and the stream then carries live events as usual; with another status, it is the whole answer), or
    /// <see langword="null"/> to send <c>created</c> and the history from the start revision.
    /// </summary>
    public Func<FakeEtcdWatchRequest, FakeEtcdAnswer?>? WatchFault { get; set; }

    /// <summary>
    /// Gets or sets raw HTTP for every new connection: given the request's head (request line and headers) as text,
    /// return the bytes to write before the connection is closed. Kestrel is bypassed, so the answer may be anything,
    /// an invalid status or header line included. <see langword="null"/> (default) serves normally.
    /// </summary>
    public Func<string, string>? RawResponder { get; set; }

    /// <summary>Starts a gateway on a free loopback port.</summary>
    /// <returns>The running gateway.</returns>
    public static async Task<FakeEtcdGateway> StartAsync()
    {
        var gateway = new FakeEtcdGateway();
        await gateway.StartServerAsync();
        return gateway;
    }

    /// <summary>Returns <paramref name="text"/> in base64, as the gateway carries keys and values.</summary>
    /// <param name="text">The text, UTF-8 encoded.</param>
    /// <returns>The base64 text.</returns>
    public static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    /// <summary>Returns a watch message with one PUT event, as the gateway writes it (no trailing newline).</summary>
    /// <param name="key">The key, in clear.</param>
    /// <param name="value">The value, in clear.</param>
    /// <param name="revision">The event's <c>mod_revision</c> and the header's revision.</param>
    /// <returns>The JSON text.</returns>
    public static string PutMessage(string key, string value, long revision)
        => EventMessage(revision, "{\"kv\":{\"key\":\"" + B64(key) + "\",\"create_revision\":\"" + Num(revision) + "\",\"mod_revision\":\"" + Num(revision)
                                  + "\",\"version\":\"1\",\"value\":\"" + B64(value) + "\"}}");

    /// <summary>Returns a watch message carrying the given raw event objects, under a header at <paramref name="revision"/>.</summary>
    /// <param name="revision">The header's revision.</param>
    /// <param name="events">Each event's JSON text.</param>
    /// <returns>The JSON text.</returns>
    public static string EventMessage(long revision, params string[] events)
        => "{\"result\":{\"header\":" + Header(revision) + ",\"events\":[" + string.Join(",", events) + "]}}";

    /// <summary>Enables auth: <c>/v3/auth/authenticate</c> takes only <paramref name="user"/> and <paramref name="password"/>, and range and watch demand a token it issued.</summary>
    /// <param name="user">The user name.</param>
    /// <param name="password">The password.</param>
    public void EnableAuth(string user, string password)
    {
        lock (_gate)
        {
            _user = user;
            _password = password;
        }
    }

    /// <summary>Makes every token issued so far invalid (as a member restart does): the next request with one gets 401 <c>invalid auth token</c>.</summary>
    public void RejectIssuedTokens()
    {
        lock (_gate)
        {
            _validTokens.Clear();
        }
    }

    /// <summary>Writes a key (a PUT at the next revision) and sends the event to every open watch.</summary>
    /// <param name="key">The key.</param>
    /// <param name="value">The value.</param>
    /// <returns>The new revision.</returns>
    public long Put(string key, string value)
    {
        lock (_gate)
        {
            var revision = ++_revision;
            var bytes = Encoding.UTF8.GetBytes(value);
            var create = _store.TryGetValue(key, out var existing) ? existing.CreateRevision : revision;
            var entry = new Entry(bytes, create, revision, (existing?.Version ?? 0) + 1);
            _store[key] = entry;
            Record(new Change(revision, key, entry));
            return revision;
        }
    }

    /// <summary>Deletes a key (at the next revision) and sends the event to every open watch.</summary>
    /// <param name="key">The key.</param>
    /// <returns>The new revision.</returns>
    public long Delete(string key)
    {
        lock (_gate)
        {
            var revision = ++_revision;
            _store.Remove(key);
            Record(new Change(revision, key, null));
            return revision;
        }
    }

    /// <summary>Takes the next revision for a message a test writes itself (<see cref="SendToWatches"/>), so later puts come after it.</summary>
    /// <returns>The revision.</returns>
    public long NextRevision()
    {
        lock (_gate)
        {
            return ++_revision;
        }
    }

    /// <summary>Writes <paramref name="text"/> as it is (a newline is added) to every open watch stream.</summary>
    /// <param name="text">The raw text, normally one JSON message.</param>
    /// <param name="dripDelay">When set, the text is written one byte at a time with this pause between bytes.</param>
    public void SendToWatches(string text, TimeSpan? dripDelay = null) => Broadcast(new Output(text + "\n", dripDelay, 0, false, false));

    /// <summary>Writes a progress notification at the current revision to every open watch stream.</summary>
    public void SendProgress() => SendToWatches("{\"result\":{\"header\":" + Header(Revision) + "}}");

    /// <summary>
    /// Writes one watch message of about <paramref name="bytes"/> bytes to every open watch stream (a PUT whose value is
    /// that long), from a reused buffer so that the gateway itself allocates next to nothing.
    /// </summary>
    /// <param name="bytes">The length of the value, in bytes.</param>
    public void SendHugeToWatches(long bytes) => Broadcast(new Output(null, null, bytes, false, false));

    /// <summary>Resets every open watch stream (the connection is aborted mid-stream).</summary>
    public void CutWatches() => Broadcast(new Output(null, null, 0, true, false));

    /// <summary>Ends every open watch stream cleanly (the response completes), wherever it is, even inside a message.</summary>
    public void EndWatches() => Broadcast(new Output(null, null, 0, false, true));

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        CutWatches();
        if (_app is not null)
        {
            await _app.StopAsync();
            await _app.DisposeAsync();
        }
    }

    private static string Num(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Header(long revision)
        => $$"""{"cluster_id":"14841639068965178418","member_id":"10276657743932975437","revision":"{{revision.ToString(CultureInfo.InvariantCulture)}}","raft_term":"2"}""";

    private static string KeyValueJson(string key, Entry entry)
        => $$"""{"key":"{{B64(key)}}","create_revision":"{{entry.CreateRevision}}","mod_revision":"{{entry.ModRevision}}","version":"{{entry.Version}}","value":"{{Convert.ToBase64String(entry.Value)}}"}""";

    private static string EventJson(Change change)
        => change.Entry is { } entry
            ? $$"""{"kv":{{KeyValueJson(change.Key, entry)}}}"""
            : "{\"type\":\"DELETE\",\"kv\":{\"key\":\"" + B64(change.Key) + "\",\"mod_revision\":\"" + Num(change.Revision) + "\"}}";

    private void Record(Change change)
    {
        _history.Add(change);
        var message = EventMessage(change.Revision, EventJson(change)) + "\n";
        foreach (var watch in _watches)
        {
            watch.Outputs.Writer.TryWrite(new Output(message, null, 0, false, false));
        }
    }

    private void Broadcast(Output output)
    {
        lock (_gate)
        {
            foreach (var watch in _watches)
            {
                watch.Outputs.Writer.TryWrite(output);
            }
        }
    }

    private async Task StartServerAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, listen => listen.Use(next => connection => RawOrNextAsync(connection, next))));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        var app = builder.Build();
        app.Run(HandleAsync);
        await app.StartAsync();
        Url = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        _app = app;
    }

    private async Task RawOrNextAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        if (RawResponder is not { } raw)
        {
            await next(connection);
            return;
        }

        // Read the request head, answer with whatever the test wrote, and close.
        var input = connection.Transport.Input;
        var head = string.Empty;
        for (var reads = 0; reads < 100; reads++)
        {
            var result = await input.ReadAsync();
            var text = Encoding.ASCII.GetString(result.Buffer.ToArray());
            var end = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            if (end >= 0 || result.IsCompleted || result.Buffer.Length > 64 * 1024)
            {
                head = end >= 0 ? text[..end] : text;
                input.AdvanceTo(result.Buffer.End);
                break;
            }

            input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
        }

        await connection.Transport.Output.WriteAsync(Encoding.ASCII.GetBytes(raw(head)));
        await connection.Transport.Output.CompleteAsync();
    }

    private async Task HandleAsync(HttpContext context)
    {
        var path = context.Request.Path.Value ?? string.Empty;
        string body;
        using (var reader = new StreamReader(context.Request.Body, Encoding.UTF8))
        {
            body = await reader.ReadToEndAsync(context.RequestAborted);
        }

        var authorization = context.Request.Headers.Authorization.ToString();
        var request = new FakeEtcdRequest(path, authorization.Length == 0 ? null : authorization, body);
        _requests.Enqueue(request);
        switch (path)
        {
            case "/v3/auth/authenticate":
                await WriteAsync(context, AuthenticateFault?.Invoke(request) ?? Authenticate(body));
                return;
            case "/v3/kv/range":
                if (RangeFault?.Invoke(request) is { } rangeFault)
                {
                    await WriteAsync(context, rangeFault);
                    return;
                }

                await WriteAsync(context, Unauthorized(request) ?? Range(body));
                return;
            case "/v3/watch":
                await WatchAsync(context, request, body);
                return;
            default:
                await WriteAsync(context, FakeEtcdAnswer.Status(404, """{"error":"Not Found","code":5}"""));
                return;
        }
    }

    private FakeEtcdAnswer Authenticate(string body)
    {
        var request = JsonNode.Parse(body);
        lock (_gate)
        {
            if (_user is null)
            {
                return FakeEtcdAnswer.Status(400, """{"error":"etcdserver: authentication is not enabled","message":"etcdserver: authentication is not enabled","code":9}""");
            }

            if ((string?)request?["name"] != _user || (string?)request?["password"] != _password)
            {
                return FakeEtcdAnswer.Status(400, """{"error":"etcdserver: authentication failed, invalid user ID or password","message":"etcdserver: authentication failed, invalid user ID or password","code":3}""");
            }

            var token = $"{RandomLetters(16)}.{(_issuedTokens.Count + 1).ToString(CultureInfo.InvariantCulture)}";
            _issuedTokens.Add(token);
            _validTokens.Add(token);
            return FakeEtcdAnswer.Json($$"""{"header":{{Header(_revision)}},"token":"{{token}}"}""");
        }
    }

    private static string RandomLetters(int count)
    {
        const string Letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        return string.Create(count, 0, static (span, _) =>
        {
            for (var i = 0; i < span.Length; i++)
            {
                span[i] = Letters[Random.Shared.Next(Letters.Length)];
            }
        });
    }

    private FakeEtcdAnswer? Unauthorized(FakeEtcdRequest request)
    {
        lock (_gate)
        {
            if (_user is null || (request.Authorization is { } token && _validTokens.Contains(token)))
            {
                return null;
            }
        }

        return FakeEtcdAnswer.Status(401, """{"error":"etcdserver: invalid auth token","message":"etcdserver: invalid auth token","code":16}""");
    }

    private FakeEtcdAnswer Range(string body)
    {
        var request = JsonNode.Parse(body)!;
        var key = Encoding.UTF8.GetString(Convert.FromBase64String((string)request["key"]!));
        var end = request["range_end"] is { } rangeEnd ? Encoding.UTF8.GetString(Convert.FromBase64String((string)rangeEnd!)) : null;
        lock (_gate)
        {
            var items = _store.Where(p => end is null ? p.Key == key : string.CompareOrdinal(p.Key, key) >= 0 && string.CompareOrdinal(p.Key, end) < 0)
                .Select(p => KeyValueJson(p.Key, p.Value)).ToList();
            var kvs = items.Count == 0 ? string.Empty : $",\"kvs\":[{string.Join(",", items)}],\"count\":\"{items.Count}\"";
            return FakeEtcdAnswer.Json($$"""{"header":{{Header(_revision)}}{{kvs}}}""");
        }
    }

    private async Task WatchAsync(HttpContext context, FakeEtcdRequest request, string body)
    {
        var create = JsonNode.Parse(body)?["create_request"];
        var start = create?["start_revision"] is { } s ? long.Parse((string)s!, CultureInfo.InvariantCulture) : 0;
        var watchRequest = new FakeEtcdWatchRequest(start, create?["progress_notify"]?.GetValue<bool>() ?? false, request.Authorization);
        _watchRequests.Enqueue(watchRequest);
        if (Unauthorized(request) is { } unauthorized)
        {
            await WriteAsync(context, unauthorized);
            return;
        }

        var preamble = WatchFault?.Invoke(watchRequest);
        if (preamble is { StatusCode: not 200 })
        {
            await WriteAsync(context, preamble);
            return;
        }

        var watch = new Watch();
        string opening;
        lock (_gate)
        {
            if (preamble is null)
            {
                var text = new StringBuilder("{\"result\":{\"header\":" + Header(_revision) + ",\"created\":true}}").Append('\n');
                if (start > 0 && start <= CompactedRevision)
                {
                    text.Append("{\"result\":{\"header\":" + Header(_revision) + ",\"compact_revision\":\"" + Num(CompactedRevision + 1) + "\",\"canceled\":true}}").Append('\n');
                }
                else
                {
                    foreach (var change in _history.Where(c => c.Revision >= start))
                    {
                        text.Append(EventMessage(change.Revision, EventJson(change))).Append('\n');
                    }
                }

                opening = text.ToString();
            }
            else
            {
                opening = string.Empty;
            }

            _watches.Add(watch);
        }

        try
        {
            context.Response.ContentType = "application/json";
            await context.Response.StartAsync(context.RequestAborted);
            if (preamble is not null)
            {
                await preamble.WriteBodyAsync(context.Response.BodyWriter, context.RequestAborted);
            }
            else
            {
                await context.Response.BodyWriter.WriteAsync(Encoding.UTF8.GetBytes(opening), context.RequestAborted);
            }

            await foreach (var output in watch.Outputs.Reader.ReadAllAsync(context.RequestAborted))
            {
                if (output.Cut)
                {
                    context.Abort();
                    return;
                }

                if (output.End)
                {
                    return;
                }

                if (preamble is { DetachFromLiveEvents: true })
                {
                    continue;
                }

                await WriteOutputAsync(context.Response.BodyWriter, output, context.RequestAborted);
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException)
        {
            // The client went away.
        }
        finally
        {
            lock (_gate)
            {
                _watches.Remove(watch);
            }
        }
    }

    private static async Task WriteOutputAsync(PipeWriter writer, Output output, CancellationToken cancellationToken)
    {
        if (output.Text is { } text)
        {
            var bytes = Encoding.UTF8.GetBytes(text);
            if (output.Drip is { } drip)
            {
                for (var i = 0; i < bytes.Length; i++)
                {
                    await writer.WriteAsync(bytes.AsMemory(i, 1), cancellationToken);
                    await Task.Delay(drip, cancellationToken);
                }

                return;
            }

            await writer.WriteAsync(bytes, cancellationToken);
            return;
        }

        await writer.WriteAsync("{\"result\":{\"header\":{\"revision\":\"99\"},\"events\":[{\"kv\":{\"key\":\"b3JkZXJzL2h1Z2U=\",\"mod_revision\":\"99\",\"value\":\""u8.ToArray(), cancellationToken);
        await WriteFillerAsync(writer, output.HugeBytes, cancellationToken);
        await writer.WriteAsync("\"}}]}}\n"u8.ToArray(), cancellationToken);
    }

    private static async Task WriteFillerAsync(PipeWriter writer, long bytes, CancellationToken cancellationToken)
    {
        for (long written = 0; written < bytes;)
        {
            var chunk = (int)Math.Min(s_filler.Length, bytes - written);
            var result = await writer.WriteAsync(s_filler.AsMemory(0, chunk), cancellationToken);
            if (result.IsCanceled || result.IsCompleted)
            {
                return;
            }

            written += chunk;
        }
    }

    private static async Task WriteAsync(HttpContext context, FakeEtcdAnswer answer)
    {
        context.Response.StatusCode = answer.StatusCode;
        context.Response.ContentType = answer.ContentType;
        if (answer.ContentLength is { } length)
        {
            context.Response.ContentLength = length;
        }

        try
        {
            await answer.WriteBodyAsync(context.Response.BodyWriter, context.RequestAborted);
            if (answer.AbortAfterBody)
            {
                await context.Response.BodyWriter.FlushAsync(context.RequestAborted);
                context.Abort();
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException)
        {
            // The client went away (or read no further than its limit).
        }
    }

    /// <summary>One key's state.</summary>
    private sealed record Entry(byte[] Value, long CreateRevision, long ModRevision, long Version);

    /// <summary>One event of the history; <see cref="Entry"/> is null for a delete.</summary>
    private sealed record Change(long Revision, string Key, Entry? Entry);

    /// <summary>Something to write to a watch stream: text (maybe dripped), a huge message, a cut or a clean end.</summary>
    private sealed record Output(string? Text, TimeSpan? Drip, long HugeBytes, bool Cut, bool End);

    /// <summary>One open watch stream.</summary>
    private sealed class Watch
    {
        public Channel<Output> Outputs { get; } = Channel.CreateUnbounded<Output>();
    }

    /// <summary>Writes a filler body for <see cref="FakeEtcdAnswer.Huge"/>.</summary>
    internal static Task WriteHugeBodyAsync(PipeWriter writer, string start, long fillerBytes, string end, CancellationToken cancellationToken)
        => WriteHugeBodyCoreAsync(writer, start, fillerBytes, end, cancellationToken);

    private static async Task WriteHugeBodyCoreAsync(PipeWriter writer, string start, long fillerBytes, string end, CancellationToken cancellationToken)
    {
        await writer.WriteAsync(Encoding.UTF8.GetBytes(start), cancellationToken);
        await WriteFillerAsync(writer, fillerBytes, cancellationToken);
        await writer.WriteAsync(Encoding.UTF8.GetBytes(end), cancellationToken);
    }
}

/// <summary>One request the fake gateway received.</summary>
/// <param name="Path">The path, for example <c>/v3/kv/range</c>.</param>
/// <param name="Authorization">The <c>Authorization</c> header, or <see langword="null"/>.</param>
/// <param name="Body">The JSON body.</param>
public sealed record FakeEtcdRequest(string Path, string? Authorization, string Body);

/// <summary>One watch the fake gateway was asked to open.</summary>
/// <param name="StartRevision">The <c>start_revision</c> asked for (0 when absent).</param>
/// <param name="ProgressNotify">Whether the watch asked for progress notifications.</param>
/// <param name="Authorization">The <c>Authorization</c> header, or <see langword="null"/>.</param>
public sealed record FakeEtcdWatchRequest(long StartRevision, bool ProgressNotify, string? Authorization);

/// <summary>An answer the fake gateway sends instead of its own.</summary>
public sealed class FakeEtcdAnswer
{
    private readonly Func<PipeWriter, CancellationToken, Task> _write;

    private FakeEtcdAnswer(int statusCode, Func<PipeWriter, CancellationToken, Task> write)
    {
        StatusCode = statusCode;
        _write = write;
    }

    /// <summary>Gets the HTTP status.</summary>
    public int StatusCode { get; }

    /// <summary>Gets the content type. Default <c>application/json</c>.</summary>
    public string ContentType { get; set; } = "application/json";

    /// <summary>Gets the Content-Length to announce, or <see langword="null"/> for a chunked body.</summary>
    public long? ContentLength { get; set; }

    /// <summary>
    /// Gets or sets whether a watch that starts with this answer then stays silent: live events, and text sent with
    /// <see cref="FakeEtcdGateway.SendToWatches"/>, are not written to it (a stalled stream). Cuts and ends still apply.
    /// </summary>
    public bool DetachFromLiveEvents { get; set; }

    /// <summary>Gets whether the connection is reset once the body is written (a body cut short).</summary>
    public bool AbortAfterBody { get; set; }

    /// <summary>A 200 answer with <paramref name="body"/> as it is.</summary>
    /// <param name="body">The body text (need not be JSON).</param>
    /// <returns>The answer.</returns>
    public static FakeEtcdAnswer Json(string body) => Status(200, body);

    /// <summary>An answer with <paramref name="status"/> and <paramref name="body"/> as it is.</summary>
    /// <param name="status">The HTTP status.</param>
    /// <param name="body">The body text.</param>
    /// <returns>The answer.</returns>
    public static FakeEtcdAnswer Status(int status, string body)
        => new(status, async (writer, token) => await writer.WriteAsync(Encoding.UTF8.GetBytes(body), token));

    /// <summary>A 200 answer whose body is written one byte at a time with <paramref name="delay"/> between bytes.</summary>
    /// <param name="body">The body text.</param>
    /// <param name="delay">The pause between bytes.</param>
    /// <returns>The answer.</returns>
    public static FakeEtcdAnswer Drip(string body, TimeSpan delay)
        => new(200, async (writer, token) =>
        {
            var bytes = Encoding.UTF8.GetBytes(body);
            for (var i = 0; i < bytes.Length; i++)
            {
                await writer.WriteAsync(bytes.AsMemory(i, 1), token);
                await Task.Delay(delay, token);
            }
        });

    /// <summary>
    /// A 200 answer of <paramref name="start"/>, then <paramref name="fillerBytes"/> letters <c>A</c> (valid base64), then
    /// <paramref name="end"/>, written from a reused buffer.
    /// </summary>
    /// <param name="start">The text before the filler.</param>
    /// <param name="fillerBytes">How many filler bytes.</param>
    /// <param name="end">The text after the filler.</param>
    /// <returns>The answer.</returns>
    public static FakeEtcdAnswer Huge(string start, long fillerBytes, string end)
        => new(200, (writer, token) => FakeEtcdGateway.WriteHugeBodyAsync(writer, start, fillerBytes, end, token));

    /// <summary>Writes the body.</summary>
    /// <param name="writer">The response body.</param>
    /// <param name="cancellationToken">Ends the write when the client goes away.</param>
    /// <returns>A task that completes when the body is written.</returns>
    public Task WriteBodyAsync(PipeWriter writer, CancellationToken cancellationToken) => _write(writer, cancellationToken);
}
