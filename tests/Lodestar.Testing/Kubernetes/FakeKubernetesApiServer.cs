using System.Collections.Concurrent;
using System.Globalization;
using System.IO.Compression;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Threading.Channels;
using Lodestar.Testing.Tls;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lodestar.Testing.Kubernetes;

/// <summary>How the fake answers a watch from a resourceVersion older than its history.</summary>
public enum ExpiredWatchAnswer
{
    /// <summary>HTTP 410 Gone when the watch starts.</summary>
    HttpGone,

    /// <summary>HTTP 200, then an ERROR event carrying a Status with code 410, as the watch cache does.</summary>
    ErrorEvent,
}

/// <summary>Which requests a one-shot fault of <see cref="FakeKubernetesApiServer"/> applies to.</summary>
public enum FakeRequestKind
{
    /// <summary>LIST requests (paged or not).</summary>
    List,

    /// <summary>WATCH requests, before the stream starts.</summary>
    Watch,
}

/// <summary>
/// A fake Kubernetes API server for EndpointSlices (<c>discovery.k8s.io/v1</c>) on Kestrel over HTTPS, with a bearer
/// token check. It keeps a resourceVersion counter and an event history; pages lists (<c>limit</c>/<c>continue</c>);
/// streams watches with bookmarks; expires old resourceVersions with 410 (HTTP or ERROR event); and injects faults:
/// a stream cut mid-event, a malformed line, 503s, and refused connections while stopped.
/// </summary>
/// <remarks>
/// Its hostile mode answers as a broken server or a careless proxy would: error statuses on chosen requests
/// (<see cref="FailNext"/>), the request's credentials echoed in every error text (<see cref="EchoCredentials"/>), raw
/// list bodies (garbage, truncated or wrongly shaped JSON: <see cref="ReplaceNextListBody"/>), oversized lists and
/// events streamed from one small buffer (<see cref="SendOversizedNextList"/>, <see cref="SendOversizedEvent"/>), lists
/// and events dripped a few bytes at a time (<see cref="DripNextList"/>, <see cref="DripEvent"/>), raw watch lines
/// (<see cref="SendRawLine"/>), ERROR events (<see cref="SendErrorEvent"/>) and watches that go silent
/// (<see cref="StallWatches"/>). Every fault is one-shot or ends with the connection, so the server behaves again after.
/// </remarks>
public sealed class FakeKubernetesApiServer : IAsyncDisposable
{
    private const string Collection = "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices";

    private readonly Lock _gate = new();
    private readonly Dictionary<(string Ns, string Name), (FakeEndpointSlice Slice, long Version)> _objects = [];
    private readonly List<HistoryEntry> _history = [];
    private readonly List<Watcher> _watchers = [];
    private readonly Dictionary<int, (long Version, List<JsonObject> Items)> _listSnapshots = [];
    private readonly List<string> _requests = [];
    private readonly ConcurrentQueue<string> _serverNames = new();
    private readonly ConcurrentQueue<string> _clientCertificateSubjects = new();
    private readonly X509Certificate2 _serverCertificate;
    private WebApplication? _app;
    private long _resourceVersion = 100;
    private long _oldestRetained = 100;
    private int _nextSnapshot;
    private readonly Queue<(FakeRequestKind Kind, int Status)> _failures = new();
    private bool _cutNextEvent;
    private volatile bool _unavailable;
    private Func<HttpContext, Task>? _nextList;
    private long _drippedBytes;
    private int _protobufResponses;
    private int _jsonResponses;

    private FakeKubernetesApiServer(X509Certificate2 authority, X509Certificate2 serverCertificate)
    {
        Authority = authority;
        _serverCertificate = serverCertificate;
    }

    /// <summary>Gets the server names clients sent in TLS SNI, one per handshake (empty for a handshake without SNI).</summary>
    public IReadOnlyCollection<string> ServerNamesRequested => _serverNames;

    /// <summary>Gets the CA that signed the server certificate.</summary>
    public X509Certificate2 Authority { get; }

    /// <summary>Gets the CA as PEM.</summary>
    public string AuthorityPem => Authority.ExportCertificatePem();

    /// <summary>Gets the port the server listens on (kept across restarts).</summary>
    public int Port { get; private set; }

    /// <summary>Gets the server URL.</summary>
    public Uri Url => new($"https://127.0.0.1:{Port}");

    /// <summary>Gets or sets the bearer token the server accepts.</summary>
    public string Token { get; set; } = "fake-token-0123456789";

    /// <summary>
    /// Gets or sets the thumbprint of a client certificate the server accepts in place of the token, or
    /// <see langword="null"/> (default) to accept the token only.
    /// </summary>
    public string? AcceptedClientCertificate { get; set; }

    /// <summary>Gets the subject of the client certificate of each request that presented one, in order.</summary>
    public IReadOnlyCollection<string> ClientCertificateSubjects => _clientCertificateSubjects;

    /// <summary>
    /// Gets or sets whether error answers echo the request's <c>Authorization</c> header and its bare token: in the
    /// Status message of every error status, in the reason phrase of 5xx answers, and in ERROR events.
    /// </summary>
    public bool EchoCredentials { get; set; }

    /// <summary>Gets or sets how a watch from an expired resourceVersion is refused.</summary>
    public ExpiredWatchAnswer ExpiredWatchAnswer { get; set; } = ExpiredWatchAnswer.HttpGone;

    /// <summary>Gets or sets whether every request gets 503 Service Unavailable; turning it on cuts open watches.</summary>
    public bool Unavailable
    {
        get => _unavailable;
        set
        {
            _unavailable = value;
            if (value)
            {
                EndWatches(abort: true);
            }
        }
    }

    /// <summary>Gets or sets the bookmark period on open watches that asked for bookmarks; <see langword="null"/> sends none unprompted.</summary>
    public TimeSpan? BookmarkInterval { get; set; }

    /// <summary>Gets the current resourceVersion.</summary>
    public long ResourceVersion
    {
        get
        {
            lock (_gate)
            {
                return _resourceVersion;
            }
        }
    }

    /// <summary>Gets the number of watches currently streaming.</summary>
    public int OpenWatches
    {
        get
        {
            lock (_gate)
            {
                return _watchers.Count;
            }
        }
    }

    /// <summary>Gets every request received, as <c>LIST ?query</c> or <c>WATCH ?query</c> (or <c>REJECTED ...</c>).</summary>
    public IReadOnlyList<string> Requests
    {
        get
        {
            lock (_gate)
            {
                return _requests.ToList();
            }
        }
    }

    /// <summary>Gets how many bytes <see cref="DripEvent"/> and <see cref="DripNextList"/> have written so far.</summary>
    public long DrippedBytes => Interlocked.Read(ref _drippedBytes);

    /// <summary>Gets how many responses were gzip-compressed.</summary>
    public int GzipResponses { get; private set; }

    /// <summary>
    /// Gets or sets whether the server answers in protobuf (<c>application/vnd.kubernetes.protobuf</c>) when the client
    /// accepts it, as kube-apiserver does for built-in types; <see langword="false"/> answers JSON only, as a server or
    /// proxy without protobuf does. Default <see langword="true"/>.
    /// </summary>
    public bool ServeProtobuf { get; set; } = true;

    /// <summary>Gets how many lists and watches were answered in protobuf.</summary>
    public int ProtobufResponses => Volatile.Read(ref _protobufResponses);

    /// <summary>Gets how many lists and watches were answered in JSON.</summary>
    public int JsonResponses => Volatile.Read(ref _jsonResponses);

    /// <summary>Starts a server on 127.0.0.1 with a fresh CA and server certificate.</summary>
    /// <param name="certificateNames">
    /// The only DNS names the server certificate carries, as for an API server reached by an address its certificate
    /// does not name; <see langword="null"/> for <c>127.0.0.1</c> and <c>localhost</c>.
    /// </param>
    /// <param name="certificateSubject">The common name of the server certificate (server text a TLS error may quote).</param>
    public static async Task<FakeKubernetesApiServer> StartAsync(IReadOnlyList<string>? certificateNames = null, string certificateSubject = "kube-apiserver")
    {
        var authority = TestCertificates.CreateAuthority("Lodestar Fake Kubernetes CA");
        var server = new FakeKubernetesApiServer(authority, TestCertificates.CreateServer(authority, certificateSubject, dnsNames: certificateNames));
        await server.ListenAsync(0);
        return server;
    }

    /// <summary>Creates or replaces a slice: an ADDED or MODIFIED event.</summary>
    public long Upsert(FakeEndpointSlice slice)
    {
        lock (_gate)
        {
            var version = ++_resourceVersion;
            var key = (slice.Namespace, slice.Name);
            var type = _objects.ContainsKey(key) ? "MODIFIED" : "ADDED";
            _objects[key] = (slice, version);
            Record(type, slice, slice.ToJson(version), version);
            return version;
        }
    }

    /// <summary>Deletes a slice: a DELETED event. Returns false when it did not exist.</summary>
    public bool Delete(string ns, string name)
    {
        lock (_gate)
        {
            if (!_objects.Remove((ns, name), out var existing))
            {
                return false;
            }

            var version = ++_resourceVersion;
            Record("DELETED", existing.Slice, existing.Slice.ToJson(version), version);
            return true;
        }
    }

    /// <summary>Sends a BOOKMARK with the current resourceVersion on every open watch that asked for bookmarks.</summary>
    public void SendBookmark()
    {
        lock (_gate)
        {
            var line = BookmarkLine(_resourceVersion);
            foreach (var watcher in _watchers.Where(w => w.Bookmarks))
            {
                watcher.Channel.Writer.TryWrite(new Delivery(line, DeliveryKind.Line));
            }
        }
    }

    /// <summary>Forgets the event history: a watch from any earlier resourceVersion gets 410 Gone, as after etcd compaction.</summary>
    public void Compact()
    {
        lock (_gate)
        {
            _history.Clear();
            _oldestRetained = _resourceVersion;
        }
    }

    /// <summary>Makes the next event be written only half (half a JSON line) before the connection is cut.</summary>
    public void CutNextEvent()
    {
        lock (_gate)
        {
            _cutNextEvent = true;
        }
    }

    /// <summary>Writes a line that is not a valid watch event on every open watch.</summary>
    public void SendMalformedLine(string line = "{\"type\":\"MODIFIED\",\"object\":{\"metadata\":")
    {
        lock (_gate)
        {
            foreach (var watcher in _watchers)
            {
                watcher.Channel.Writer.TryWrite(new Delivery(line, DeliveryKind.Line));
            }
        }
    }

    /// <summary>
    /// Writes <paramref name="line"/> as it is (plus a newline) on every open watch; a protobuf watch gets it as a frame
    /// (a line that is not JSON as a frame no parser accepts).
    /// </summary>
    public void SendRawLine(string line) => SendMalformedLine(line);

    /// <summary>Writes <paramref name="bytes"/> as they are on every open protobuf watch (a frame, part of one, or garbage).</summary>
    public void SendRawProtobufBytes(byte[] bytes) => Deliver(new Delivery("", DeliveryKind.Frame) { Bytes = bytes });

    /// <summary>Answers the next <paramref name="count"/> requests of <paramref name="kind"/> with <paramref name="status"/> and a Status body.</summary>
    public void FailNext(FakeRequestKind kind, int status, int count = 1)
    {
        lock (_gate)
        {
            for (var i = 0; i < count; i++)
            {
                _failures.Enqueue((kind, status));
            }
        }
    }

    /// <summary>Answers the next LIST with <paramref name="body"/> as it is (status 200, JSON content type).</summary>
    public void ReplaceNextListBody(string body)
        => SetNextList(async context =>
        {
            context.Response.ContentType = "application/json";
            await context.Response.Body.WriteAsync(Encoding.UTF8.GetBytes(body));
        });

    /// <summary>
    /// Answers the next LIST with a valid-looking list padded to <paramref name="bytes"/> bytes, without a
    /// Content-Length, streamed from one 64 KiB buffer: the server never holds the body.
    /// </summary>
    public void SendOversizedNextList(long bytes)
        => SetNextList(async context =>
        {
            context.Response.ContentType = "application/json";
            var head = Encoding.UTF8.GetBytes("{\"kind\":\"EndpointSliceList\",\"metadata\":{\"resourceVersion\":\"1\"},\"padding\":\"");
            await context.Response.Body.WriteAsync(head);
            await WritePaddingAsync(context, bytes - head.Length);
            await context.Response.Body.WriteAsync("\"}"u8.ToArray());
        });

    /// <summary>Answers the next LIST with its real body, <paramref name="chunk"/> bytes every <paramref name="interval"/> (real time).</summary>
    public void DripNextList(TimeSpan interval, int chunk = 1)
        => SetNextList(async context =>
        {
            context.Response.ContentType = "application/json";
            var body = Encoding.UTF8.GetBytes(ListBody(context, out _));
            for (var i = 0; i < body.Length; i += chunk)
            {
                await context.Response.Body.WriteAsync(body.AsMemory(i, Math.Min(chunk, body.Length - i)), context.RequestAborted);
                await context.Response.Body.FlushAsync(context.RequestAborted);
                Interlocked.Add(ref _drippedBytes, Math.Min(chunk, body.Length - i));
                await Task.Delay(interval, context.RequestAborted);
            }
        });

    /// <summary>Writes one line of <paramref name="bytes"/> bytes (an event's start, then padding) on every open watch, from one 64 KiB buffer.</summary>
    public void SendOversizedEvent(long bytes) => Deliver(new Delivery("", DeliveryKind.Oversized) { Size = bytes });

    /// <summary>Writes <paramref name="line"/> on every open watch, <paramref name="chunk"/> bytes every <paramref name="interval"/>, never finishing it.</summary>
    public void DripEvent(string line, TimeSpan interval, int chunk = 1) => Deliver(new Delivery(line, DeliveryKind.Drip) { Interval = interval, Size = chunk });

    /// <summary>Sends an ERROR event with a Status of <paramref name="code"/> on every open watch (echoing credentials when asked); the watch goes on.</summary>
    public void SendErrorEvent(int code, string message, string reason = "InternalError") => Deliver(new Delivery(message, DeliveryKind.Error) { Code = code, Reason = reason });

    /// <summary>Makes every open watch go silent (no event, no bookmark) while its connection stays open.</summary>
    public void StallWatches() => Deliver(new Delivery("", DeliveryKind.Stall));

    /// <summary>Renders a watch event line for <paramref name="slice"/> at <paramref name="resourceVersion"/>, for raw injection.</summary>
    public static string EventLine(string type, FakeEndpointSlice slice, long resourceVersion)
        => new JsonObject { ["type"] = type, ["object"] = slice.ToJson(resourceVersion) }.ToJsonString();

    /// <summary>Ends every open watch: cleanly, or by aborting the connection.</summary>
    public void EndWatches(bool abort)
    {
        lock (_gate)
        {
            foreach (var watcher in _watchers)
            {
                watcher.Channel.Writer.TryWrite(new Delivery("", abort ? DeliveryKind.Abort : DeliveryKind.End));
            }
        }
    }

    /// <summary>Stops listening (connections are refused) and aborts open watches; the state is kept.</summary>
    public async Task StopAsync()
    {
        EndWatches(abort: true);
        if (_app is { } app)
        {
            _app = null;
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                await app.StopAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
            }

            await app.DisposeAsync();
        }
    }

    /// <summary>Listens again on the same port.</summary>
    public Task RestartAsync() => ListenAsync(Port);

    /// <summary>Writes a kubeconfig for this server and returns its path.</summary>
    /// <param name="directory">The folder to write it in.</param>
    /// <param name="token">The user's token; default <see cref="Token"/>.</param>
    /// <param name="context">The context's name.</param>
    /// <param name="ns">The context's namespace.</param>
    /// <param name="caPem">The CA to trust; default <see cref="AuthorityPem"/>.</param>
    /// <param name="tlsServerName">The cluster's <c>tls-server-name</c>.</param>
    /// <param name="user">The user's section, each line indented four spaces, in place of the token, such as an <c>exec</c> block.</param>
    public string WriteKubeconfig(string directory, string? token = null, string context = "fake", string? ns = null, string? caPem = null, string? tlsServerName = null,
        string? user = null)
    {
        var ca = Convert.ToBase64String(Encoding.UTF8.GetBytes(caPem ?? AuthorityPem));
        var yaml = $"""
            apiVersion: v1
            kind: Config
            current-context: {context}
            clusters:
            - name: fake-cluster
              cluster:
                server: {Url.GetLeftPart(UriPartial.Authority)}
                certificate-authority-data: {ca}
            {(tlsServerName is null ? "" : "    tls-server-name: " + tlsServerName)}
            contexts:
            - name: {context}
              context:
                cluster: fake-cluster
                user: fake-user
            {(ns is null ? "" : "    namespace: " + ns)}
            users:
            - name: fake-user
              user:
            {user ?? "    token: " + (token ?? Token)}
            """;
        var path = Path.Combine(directory, "kubeconfig-" + Guid.NewGuid().ToString("N")[..8]);
        File.WriteAllText(path, yaml);
        return path;
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        _serverCertificate.Dispose();
        Authority.Dispose();
    }

    private async Task ListenAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, l => l.UseHttps(new HttpsConnectionAdapterOptions
        {
            ServerCertificateSelector = (_, name) =>
            {
                _serverNames.Enqueue(name ?? "");
                return _serverCertificate;
            },

            // Clients may authenticate with a certificate instead of a token; which one is accepted is checked per request.
            ClientCertificateMode = ClientCertificateMode.AllowCertificate,
            ClientCertificateValidation = static (_, _, _) => true,
        })));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        var app = builder.Build();
        app.Map(Collection, HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Port = new Uri(address).Port;
        _app = app;
    }

    private void Record(string type, FakeEndpointSlice slice, JsonObject json, long version)
    {
        var line = new JsonObject { ["type"] = type, ["object"] = json }.ToJsonString();
        _history.Add(new HistoryEntry(version, slice.Namespace, slice.ServiceName, line));
        var cut = _cutNextEvent;
        var delivered = false;
        foreach (var watcher in _watchers.Where(w => w.Namespace == slice.Namespace && (w.Services is null || w.Services.Contains(slice.ServiceName))))
        {
            watcher.Channel.Writer.TryWrite(new Delivery(line, cut ? DeliveryKind.Cut : DeliveryKind.Line));
            delivered = true;
        }

        if (cut && delivered)
        {
            _cutNextEvent = false;
        }
    }

    private static string BookmarkLine(long version)
        => new JsonObject
        {
            ["type"] = "BOOKMARK",
            ["object"] = new JsonObject
            {
                ["kind"] = "EndpointSlice",
                ["apiVersion"] = "discovery.k8s.io/v1",
                ["metadata"] = new JsonObject { ["resourceVersion"] = version.ToString(CultureInfo.InvariantCulture) },
            },
        }.ToJsonString();

    private async Task HandleAsync(HttpContext context)
    {
        var query = context.Request.Query;
        var watch = query["watch"] == "true" || query["watch"] == "1";
        var description = (watch ? "WATCH " : "LIST ") + context.Request.QueryString.Value;
        if (Unavailable)
        {
            Log("REJECTED 503 " + description);
            await WriteStatusAsync(context, 503, "ServiceUnavailable", "the server is currently unable to handle the request");
            return;
        }

        var authorization = context.Request.Headers.Authorization.ToString();
        var certificate = context.Connection.ClientCertificate;
        if (certificate is not null)
        {
            _clientCertificateSubjects.Enqueue(certificate.Subject);
        }

        var byCertificate = AcceptedClientCertificate is { } thumbprint && string.Equals(certificate?.Thumbprint, thumbprint, StringComparison.OrdinalIgnoreCase);
        if (!byCertificate && authorization != "Bearer " + Token)
        {
            Log("REJECTED 401 " + description);
            await WriteStatusAsync(context, 401, "Unauthorized", "Unauthorized");
            return;
        }

        if (TakeFailure(watch ? FakeRequestKind.Watch : FakeRequestKind.List) is { } status)
        {
            Log($"REJECTED {status} " + description);
            await WriteStatusAsync(context, status, status == 403 ? "Forbidden" : "InternalError", status == 403
                ? "endpointslices.discovery.k8s.io is forbidden: User \"system:serviceaccount:shop:orders\" cannot list resource \"endpointslices\""
                : "an error on the server has prevented the request from succeeding");
            return;
        }

        if (Negotiate(context) is not { } protobuf)
        {
            Log("REJECTED 406 " + description);
            await WriteStatusAsync(context, 406, "NotAcceptable", "only the following media types are accepted: application/json, application/vnd.kubernetes.protobuf");
            return;
        }

        if (protobuf)
        {
            Interlocked.Increment(ref _protobufResponses);
        }
        else
        {
            Interlocked.Increment(ref _jsonResponses);
        }

        Log(description);
        var ns = (string)context.Request.RouteValues["ns"]!;
        var selector = query["labelSelector"].ToString();
        var service = ParseSelector(selector);
        if (watch)
        {
            await WatchAsync(context, ns, service, protobuf);
        }
        else
        {
            await ListAsync(context, protobuf);
        }
    }

    /// <summary>
    /// Reads the label selectors the source sends: <c>kubernetes.io/service-name=a</c>, <c>kubernetes.io/service-name in (a,b)</c>,
    /// or <c>kubernetes.io/service-name</c> (every slice of a service) and none (null: everything).
    /// </summary>
    private static HashSet<string>? ParseSelector(string selector)
    {
        const string Label = "kubernetes.io/service-name";
        if (selector.StartsWith(Label + "=", StringComparison.Ordinal))
        {
            return new HashSet<string>(StringComparer.Ordinal) { selector[(Label.Length + 1)..] };
        }

        if (selector.StartsWith(Label + " in (", StringComparison.Ordinal) && selector.EndsWith(')'))
        {
            return new HashSet<string>(selector[(Label.Length + 5)..^1].Split(','), StringComparer.Ordinal);
        }

        return null;
    }

    /// <summary>Chooses the answer's encoding from the Accept header: protobuf, JSON, or neither (null).</summary>
    private bool? Negotiate(HttpContext context)
    {
        var accept = context.Request.Headers.Accept.ToString();
        if (ServeProtobuf && accept.Contains(FakeProtobuf.MediaType, StringComparison.OrdinalIgnoreCase))
        {
            return true;
        }

        return accept.Length == 0 || accept.Contains("application/json", StringComparison.OrdinalIgnoreCase) || accept.Contains("*/*", StringComparison.Ordinal)
            ? false
            : null;
    }

    private async Task ListAsync(HttpContext context, bool protobuf)
    {
        Func<HttpContext, Task>? replacement;
        lock (_gate)
        {
            replacement = _nextList;
            _nextList = null;
        }

        if (replacement is not null)
        {
            try
            {
                await replacement(context);
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException || context.RequestAborted.IsCancellationRequested)
            {
                // The client gave up on the answer (a cap, a deadline): that is the point of the fault.
            }

            return;
        }

        var body = ListBody(context, out var expired);
        if (expired)
        {
            await WriteStatusAsync(context, 410, "Expired", "The provided continue parameter is too old to display a consistent list result.");
            return;
        }

        context.Response.ContentType = protobuf ? FakeProtobuf.MediaType : "application/json";
        var bytes = protobuf ? FakeProtobuf.List((JsonObject)JsonNode.Parse(body)!) : Encoding.UTF8.GetBytes(body);
        if (context.Request.Headers.AcceptEncoding.ToString().Contains("gzip", StringComparison.OrdinalIgnoreCase))
        {
            GzipResponses++;
            context.Response.Headers.ContentEncoding = "gzip";
            using var compressed = new MemoryStream();
            await using (var gzip = new GZipStream(compressed, CompressionLevel.Fastest, leaveOpen: true))
            {
                await gzip.WriteAsync(bytes);
            }

            bytes = compressed.ToArray();
        }

        await context.Response.Body.WriteAsync(bytes);
    }

    /// <summary>Renders the list page the request asks for, or sets <paramref name="expired"/> when its continue token is too old.</summary>
    private string ListBody(HttpContext context, out bool expired)
    {
        var ns = (string)context.Request.RouteValues["ns"]!;
        var selector = context.Request.Query["labelSelector"].ToString();
        var service = ParseSelector(selector);
        var query = context.Request.Query;
        var limit = int.TryParse(query["limit"], out var l) && l > 0 ? l : int.MaxValue;
        var continueToken = query["continue"].ToString();
        (long Version, List<JsonObject> Items) snapshot;
        var offset = 0;
        int snapshotId;
        lock (_gate)
        {
            if (continueToken.Length > 0)
            {
                var parts = Encoding.UTF8.GetString(Convert.FromBase64String(continueToken)).Split(':');
                snapshotId = int.Parse(parts[0], CultureInfo.InvariantCulture);
                offset = int.Parse(parts[1], CultureInfo.InvariantCulture);
                if (!_listSnapshots.TryGetValue(snapshotId, out snapshot) || snapshot.Version < _oldestRetained)
                {
                    snapshot = default;
                }
            }
            else
            {
                snapshotId = ++_nextSnapshot;
                var items = _objects.Values
                    .Where(o => o.Slice.Namespace == ns && (service is null || service.Contains(o.Slice.ServiceName)))
                    .OrderBy(o => o.Slice.Name, StringComparer.Ordinal)
                    .Select(o => o.Slice.ToJson(o.Version))
                    .ToList();
                snapshot = (_resourceVersion, items);
                _listSnapshots[snapshotId] = snapshot;
            }
        }

        expired = snapshot.Items is null;
        if (expired)
        {
            return "";
        }

        var page = snapshot.Items!.Skip(offset).Take(limit).Select(i => (JsonNode)i.DeepClone()).ToArray();
        var metadata = new JsonObject { ["resourceVersion"] = snapshot.Version.ToString(CultureInfo.InvariantCulture) };
        if (offset + page.Length < snapshot.Items!.Count)
        {
            metadata["continue"] = Convert.ToBase64String(Encoding.UTF8.GetBytes($"{snapshotId}:{offset + page.Length}"));
        }

        return new JsonObject
        {
            ["kind"] = "EndpointSliceList",
            ["apiVersion"] = "discovery.k8s.io/v1",
            ["metadata"] = metadata,
            ["items"] = new JsonArray(page),
        }.ToJsonString();
    }

    private async Task WatchAsync(HttpContext context, string ns, IReadOnlySet<string>? service, bool protobuf)
    {
        var query = context.Request.Query;
        var bookmarks = query["allowWatchBookmarks"] == "true";
        var timeout = int.TryParse(query["timeoutSeconds"], out var t) && t > 0 ? TimeSpan.FromSeconds(t) : TimeSpan.FromMinutes(30);
        long from;
        lock (_gate)
        {
            from = long.TryParse(query["resourceVersion"], NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v > 0 ? v : _resourceVersion;
        }

        var watcher = new Watcher(ns, service, bookmarks, context.Request.Headers.Authorization.ToString()) { Protobuf = protobuf };
        bool expired;
        lock (_gate)
        {
            expired = from < _oldestRetained;
            if (!expired)
            {
                foreach (var entry in _history.Where(h => h.Version > from && h.Namespace == ns && (service is null || service.Contains(h.Service))))
                {
                    watcher.Channel.Writer.TryWrite(new Delivery(entry.Line, DeliveryKind.Line));
                }

                _watchers.Add(watcher);
            }
        }

        if (expired && ExpiredWatchAnswer == ExpiredWatchAnswer.HttpGone)
        {
            await WriteStatusAsync(context, 410, "Expired", $"too old resource version: {from} ({_oldestRetained})");
            return;
        }

        context.Response.StatusCode = 200;
        context.Response.ContentType = protobuf ? FakeProtobuf.WatchMediaType : "application/json";
        await context.Response.StartAsync();
        // The API server sends the headers at once, so a client knows the watch is established before any event.
        await context.Response.Body.FlushAsync();
        if (expired)
        {
            var error = new JsonObject
            {
                ["type"] = "ERROR",
                ["object"] = new JsonObject
                {
                    ["kind"] = "Status",
                    ["apiVersion"] = "v1",
                    ["status"] = "Failure",
                    ["message"] = $"too old resource version: {from} ({_oldestRetained})",
                    ["reason"] = "Expired",
                    ["code"] = 410,
                },
            }.ToJsonString();
            await WriteLineAsync(context, error, protobuf);
            return;
        }

        using var timeoutCts = new CancellationTokenSource(timeout);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeoutCts.Token, context.RequestAborted);
        using var bookmarkTimer = BookmarkInterval is { } interval && bookmarks
            ? new Timer(_ => SendBookmarkTo(watcher), null, interval, interval)
            : null;
        try
        {
            var stalled = false;
            await foreach (var delivery in watcher.Channel.Reader.ReadAllAsync(linked.Token))
            {
                if (stalled && delivery.Kind is not (DeliveryKind.Abort or DeliveryKind.End))
                {
                    // A stalled stream writes nothing more (events and bookmarks are lost for it), but can still be ended.
                    continue;
                }

                switch (delivery.Kind)
                {
                    case DeliveryKind.Line:
                        await WriteLineAsync(context, delivery.Line, protobuf);
                        break;
                    case DeliveryKind.Cut:
                        var half = protobuf ? FakeProtobuf.Frame(delivery.Line) : Encoding.UTF8.GetBytes(delivery.Line);
                        await context.Response.Body.WriteAsync(half.AsMemory(0, half.Length / 2));
                        await context.Response.Body.FlushAsync();
                        // Give the half line time to reach the client before the reset, which would discard unread data.
                        await Task.Delay(50);
                        context.Abort();
                        return;
                    case DeliveryKind.Abort:
                        context.Abort();
                        return;
                    case DeliveryKind.End:
                        return;
                    case DeliveryKind.Error:
                        await WriteLineAsync(context, ErrorEventLine(delivery, watcher.Authorization), protobuf);
                        break;
                    case DeliveryKind.Oversized when protobuf:
                        // The frame announces its full length first, then the padding follows: a client checks the length.
                        await context.Response.Body.WriteAsync(FakeProtobuf.Header((uint)Math.Min(delivery.Size, uint.MaxValue)), linked.Token);
                        await WritePaddingAsync(context, delivery.Size, linked.Token);
                        break;
                    case DeliveryKind.Oversized:
                        await context.Response.Body.WriteAsync("{\"type\":\"MODIFIED\",\"object\":{\"padding\":\""u8.ToArray(), linked.Token);
                        await WritePaddingAsync(context, delivery.Size, linked.Token);
                        await WriteLineAsync(context, "\"}}", protobuf: false);
                        break;
                    case DeliveryKind.Frame:
                        await context.Response.Body.WriteAsync(delivery.Bytes!, linked.Token);
                        await context.Response.Body.FlushAsync(linked.Token);
                        break;
                    case DeliveryKind.Drip:
                        // A protobuf frame drips all but its last byte, so it never completes either.
                        var bytes = protobuf ? FakeProtobuf.Frame(delivery.Line)[..^1] : Encoding.UTF8.GetBytes(delivery.Line);
                        for (var i = 0; i < bytes.Length; i += (int)delivery.Size)
                        {
                            await context.Response.Body.WriteAsync(bytes.AsMemory(i, Math.Min((int)delivery.Size, bytes.Length - i)), linked.Token);
                            await context.Response.Body.FlushAsync(linked.Token);
                            Interlocked.Add(ref _drippedBytes, Math.Min((int)delivery.Size, bytes.Length - i));
                            await Task.Delay(delivery.Interval, linked.Token);
                        }

                        // The line never ends: the stream stays open and silent until the client gives up.
                        stalled = true;
                        break;
                    case DeliveryKind.Stall:
                        stalled = true;
                        break;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The server-side timeout or the client going away ends the watch.
        }
        finally
        {
            lock (_gate)
            {
                _watchers.Remove(watcher);
            }
        }
    }

    private void SendBookmarkTo(Watcher watcher)
    {
        lock (_gate)
        {
            watcher.Channel.Writer.TryWrite(new Delivery(BookmarkLine(_resourceVersion), DeliveryKind.Line));
        }
    }

    private static async Task WriteLineAsync(HttpContext context, string line, bool protobuf)
    {
        await context.Response.Body.WriteAsync(protobuf ? FakeProtobuf.Frame(line) : Encoding.UTF8.GetBytes(line + "\n"));
        await context.Response.Body.FlushAsync();
    }

    private async Task WriteStatusAsync(HttpContext context, int code, string reason, string message)
    {
        var authorization = context.Request.Headers.Authorization.ToString();
        if (EchoCredentials && authorization.Length > 0)
        {
            // As a careless proxy or a debugging server does: the header, and the bare token, in the error text.
            message = $"{message} (request had Authorization: {authorization}; presented \"{Bare(authorization)}\")";
            if (code >= 500)
            {
                context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpResponseFeature>()!.ReasonPhrase = "Failed for " + Bare(authorization);
            }
        }

        context.Response.StatusCode = code;
        if (ServeProtobuf && context.Request.Headers.Accept.ToString().Contains(FakeProtobuf.MediaType, StringComparison.OrdinalIgnoreCase))
        {
            // The API server encodes its Status in the encoding the client asked for.
            context.Response.ContentType = FakeProtobuf.MediaType;
            await context.Response.Body.WriteAsync(FakeProtobuf.Status(code, reason, message));
            return;
        }

        context.Response.ContentType = "application/json";
        var body = JsonSerializer.Serialize(new JsonObject
        {
            ["kind"] = "Status",
            ["apiVersion"] = "v1",
            ["metadata"] = new JsonObject(),
            ["status"] = "Failure",
            ["message"] = message,
            ["reason"] = reason,
            ["code"] = code,
        });
        await context.Response.WriteAsync(body);
    }

    private string ErrorEventLine(Delivery delivery, string authorization)
    {
        var message = EchoCredentials && authorization.Length > 0
            ? $"{delivery.Line} (request had Authorization: {authorization}; presented \"{Bare(authorization)}\")"
            : delivery.Line;
        return new JsonObject
        {
            ["type"] = "ERROR",
            ["object"] = new JsonObject
            {
                ["kind"] = "Status",
                ["apiVersion"] = "v1",
                ["status"] = "Failure",
                ["message"] = message,
                ["reason"] = EchoCredentials && authorization.Length > 0 ? delivery.Reason + " " + Bare(authorization) : delivery.Reason,
                ["code"] = delivery.Code,
            },
        }.ToJsonString();
    }

    private static string Bare(string authorization) => authorization.StartsWith("Bearer ", StringComparison.Ordinal) ? authorization["Bearer ".Length..] : authorization;

    private static readonly byte[] s_padding = Enumerable.Repeat((byte)'x', 64 * 1024).ToArray();

    private static async Task WritePaddingAsync(HttpContext context, long bytes, CancellationToken cancellationToken = default)
    {
        for (var left = bytes; left > 0; left -= s_padding.Length)
        {
            await context.Response.Body.WriteAsync(s_padding.AsMemory(0, (int)Math.Min(left, s_padding.Length)), cancellationToken);
        }

        await context.Response.Body.FlushAsync(cancellationToken);
    }

    private int? TakeFailure(FakeRequestKind kind)
    {
        lock (_gate)
        {
            if (_failures.TryPeek(out var next) && next.Kind == kind)
            {
                _failures.Dequeue();
                return next.Status;
            }

            return null;
        }
    }

    private void SetNextList(Func<HttpContext, Task> answer)
    {
        lock (_gate)
        {
            _nextList = answer;
        }
    }

    private void Deliver(Delivery delivery)
    {
        lock (_gate)
        {
            foreach (var watcher in _watchers)
            {
                watcher.Channel.Writer.TryWrite(delivery);
            }
        }
    }

    private void Log(string request)
    {
        lock (_gate)
        {
            _requests.Add(request);
        }
    }

    private enum DeliveryKind
    {
        Line,
        Cut,
        Abort,
        End,
        Error,
        Oversized,
        Drip,
        Stall,
        Frame,
    }

    private readonly record struct Delivery(string Line, DeliveryKind Kind)
    {
        public long Size { get; init; }

        public TimeSpan Interval { get; init; }

        public int Code { get; init; }

        public string Reason { get; init; } = "";

        public byte[]? Bytes { get; init; }
    }

    private sealed record HistoryEntry(long Version, string Namespace, string Service, string Line);

    private sealed class Watcher(string ns, IReadOnlySet<string>? services, bool bookmarks, string authorization)
    {
        public string Authorization { get; } = authorization;

        public string Namespace { get; } = ns;

        public IReadOnlySet<string>? Services { get; } = services;

        public bool Bookmarks { get; } = bookmarks;

        public bool Protobuf { get; init; }

        public Channel<Delivery> Channel { get; } = System.Threading.Channels.Channel.CreateUnbounded<Delivery>(new UnboundedChannelOptions { SingleReader = true });
    }
}
