using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Lodestar.Testing.Tls;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Lodestar.Testing.Consul;

/// <summary>
/// A Consul agent (and its catalog) on 127.0.0.1 implementing the HTTP API Lodestar uses, with Consul's semantics:
/// a raft-like global index and a per-service modify index; blocking health queries (<c>?index=N&amp;wait=W</c>) that
/// hold until the service's index exceeds N or the wait elapses; the <c>passing</c> and <c>tag</c> filters; TTL checks
/// that go critical when not passed in time; HTTP checks the agent runs itself; <c>DeregisterCriticalServiceAfter</c>;
/// ACL tokens (403 "ACL not found").
/// Failure modes: 500s, refused connections, malformed answers, an agent restart that forgets local services, an
/// index reset (snapshot restore: the index goes backwards and blocked queries return at once), and the known Consul
/// bug of answering with index 0 without blocking. Hostile answers (garbage, wrong shapes, oversized bodies, slow drips,
/// stalled queries, odd indexes, echoed credentials, cut connections) are injected per query with
/// <see cref="InjectHealthFault"/>; <see cref="CutParkedQueries"/> and <see cref="ReleaseParkedQueries"/> act on the
/// blocking queries already parked.
/// </summary>
/// <remarks>
/// Differences from a real agent, on purpose: the reaper runs every <see cref="ReaperInterval"/> (Consul: ~30 s) and
/// honours any <c>DeregisterCriticalServiceAfter</c> (Consul: at least 1 minute), and no wait jitter is added, so tests
/// can use short values. One node (<see cref="NodeName"/>) in one datacenter (<see cref="Datacenter"/>).
/// <see cref="StartTlsAsync"/> serves the API over HTTPS only, as an agent with <c>ports.https</c> and
/// <c>verify_incoming</c> does; one difference stays: Consul answers a TLS 1.3 client that sent no certificate with a
/// TLS alert, while Kestrel closes the connection without one.
/// </remarks>
public sealed class FakeConsulAgent : IAsyncDisposable
{
    private static readonly TimeSpan s_defaultWait = TimeSpan.FromMinutes(5);
    private static readonly TimeSpan s_maxWait = TimeSpan.FromMinutes(10);

    private readonly Lock _gate = new();
    private readonly Dictionary<string, Instance> _instances = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _serviceIndex = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentQueue<RecordedRequest> _requests = new();
    private readonly ConcurrentQueue<string> _clientSubjects = new();
    private readonly ConcurrentQueue<ConsulFault> _faults = new();
    private readonly ConcurrentDictionary<HttpContext, byte> _parked = new();
    private readonly ConcurrentDictionary<HttpContext, byte> _stalled = new();
    private static readonly ConcurrentDictionary<int, byte[]> s_oversized = new();
    private readonly TimeProvider _time;
    private readonly TlsFiles? _tls;
    private readonly bool _requireClientCertificate;
    private readonly HttpClient _checker = new() { Timeout = TimeSpan.FromSeconds(5) };
    private readonly CancellationTokenSource _stopping = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _index = InitialIndex;
    private long _generation;
    private long _releases;
    private int _malformed;
    private WebApplication? _app;
    private Task _reaper = Task.CompletedTask;

    private FakeConsulAgent(TimeProvider time, TlsFiles? tls = null, bool requireClientCertificate = false)
    {
        _time = time;
        _tls = tls;
        _requireClientCertificate = requireClientCertificate;
    }

    /// <summary>Gets the bound port (kept across <see cref="StopAsync"/>/<see cref="StartAgainAsync"/>).</summary>
    public int Port { get; private set; }

    /// <summary>Gets the base URL, <c>http://127.0.0.1:port</c>, or <c>https://127.0.0.1:port</c> in TLS mode.</summary>
    public string Address => $"{(_tls is null ? "http" : "https")}://127.0.0.1:{Port}";

    /// <summary>Gets the subjects of the client certificates presented on TLS connections, one per connection that presented one.</summary>
    public IReadOnlyCollection<string> ClientCertificateSubjects => _clientSubjects;

    /// <summary>Gets or sets the token every request must carry (<c>X-Consul-Token</c>), or null for ACLs off.</summary>
    public string? RequiredToken { get; set; }

    /// <summary>Gets or sets whether every request fails with 500 (for example no cluster leader).</summary>
    public bool FailWith500 { get; set; }

    /// <summary>Gets or sets whether health queries answer at once with <c>X-Consul-Index: 0</c> (a known Consul bug).</summary>
    public bool BuggyZeroIndex { get; set; }

    /// <summary>Gets or sets how often TTLs, HTTP checks and critical deregistration are evaluated. Default 50 ms.</summary>
    public TimeSpan ReaperInterval { get; set; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Gets the node name reported for every instance.</summary>
    public string NodeName { get; init; } = "fake-node";

    /// <summary>Gets the node address, used when a service registers no address.</summary>
    public string NodeAddress { get; init; } = "127.0.0.1";

    /// <summary>Gets the datacenter.</summary>
    public string Datacenter { get; init; } = "dc1";

    /// <summary>Gets the node metadata.</summary>
    public Dictionary<string, string> NodeMeta { get; } = new() { ["consul-network-segment"] = "" };

    /// <summary>The index a new agent starts at; every index it issues before a reset is above it.</summary>
    public const long InitialIndex = 10;

    /// <summary>Gets the current global index.</summary>
    public long CurrentIndex
    {
        get
        {
            lock (_gate)
            {
                return _index;
            }
        }
    }

    /// <summary>Gets every request received, in order.</summary>
    public IReadOnlyCollection<RecordedRequest> Requests => _requests;

    /// <summary>Starts an agent on an ephemeral loopback port.</summary>
    public static Task<FakeConsulAgent> StartAsync(TimeProvider? time = null) => StartAsync(new FakeConsulAgent(time ?? TimeProvider.System));

    /// <summary>
    /// Starts an agent that serves HTTPS only, with <paramref name="files"/>' server certificate (and intermediate, if
    /// any). When <paramref name="requireClientCertificate"/> is set, a TLS handshake without a client certificate
    /// that chains to <paramref name="files"/>' CA fails, as with Consul's <c>verify_incoming</c>.
    /// </summary>
    public static Task<FakeConsulAgent> StartTlsAsync(TlsFiles files, bool requireClientCertificate, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(files);
        return StartAsync(new FakeConsulAgent(time ?? TimeProvider.System, files, requireClientCertificate));
    }

    /// <summary>Counts requests whose path starts with <paramref name="pathPrefix"/>.</summary>
    public int CountRequests(string pathPrefix) => _requests.Count(r => r.Path.StartsWith(pathPrefix, StringComparison.Ordinal));

    /// <summary>Makes the next <paramref name="count"/> health queries answer with truncated JSON.</summary>
    public void SendMalformed(int count) => Interlocked.Exchange(ref _malformed, count);

    /// <summary>Makes the next <paramref name="times"/> health queries that arrive answer with <paramref name="fault"/>, at once.</summary>
    public void InjectHealthFault(ConsulFault fault, int times = 1)
    {
        ArgumentNullException.ThrowIfNull(fault);
        for (var i = 0; i < times; i++)
        {
            _faults.Enqueue(fault);
        }
    }

    /// <summary>Gets how many injected faults no query has taken yet.</summary>
    public int PendingFaults => _faults.Count;

    /// <summary>Gets how many blocking health queries are parked, waiting for a change or their wait.</summary>
    public int ParkedQueries => _parked.Count;

    /// <summary>Gets how many health queries a <see cref="ConsulFault.Stall"/> or <see cref="ConsulFault.Drip"/> is holding.</summary>
    public int StalledQueries => _stalled.Count;

    /// <summary>Closes the connections of the parked blocking queries, as a proxy or a network cut would; returns how many.</summary>
    public int CutParkedQueries()
    {
        var cut = 0;
        foreach (var context in _parked.Keys)
        {
            if (_parked.TryRemove(context, out _))
            {
                context.Abort();
                cut++;
            }
        }

        return cut;
    }

    /// <summary>Makes the parked blocking queries answer now with the unchanged data and index, as when their wait ends.</summary>
    public void ReleaseParkedQueries()
    {
        lock (_gate)
        {
            _releases++;
            WakeLocked();
        }
    }

    /// <summary>Stops listening: connections are refused until <see cref="StartAgainAsync"/>. State is kept.</summary>
    public async Task StopAsync()
    {
        var app = _app;
        _app = null;
        if (app is null)
        {
            return;
        }

        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        try
        {
            await app.StopAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
        }

        await app.DisposeAsync();
    }

    /// <summary>Listens again on the same port.</summary>
    public Task StartAgainAsync() => StartServerAsync(Port);

    /// <summary>
    /// Restarts the agent without its local state: connections drop, every registered service is forgotten (and so
    /// leaves the catalog), and optionally the index restarts lower (a new cluster or a restored snapshot).
    /// </summary>
    public async Task RestartAsync(long? resetIndexTo = null)
    {
        await StopAsync();
        lock (_gate)
        {
            var names = _instances.Values.Select(i => i.Name).Distinct(StringComparer.OrdinalIgnoreCase).ToList();
            _instances.Clear();
            foreach (var name in names)
            {
                BumpLocked(name);
            }

            if (resetIndexTo is { } low)
            {
                ResetIndexLocked(low);
            }
        }

        await StartAgainAsync();
    }

    /// <summary>Sets the index lower while keeping the data (a snapshot restore); blocked queries return at once.</summary>
    public void ResetIndex(long to)
    {
        lock (_gate)
        {
            ResetIndexLocked(to);
        }
    }

    /// <summary>Registers an instance directly, as another process would through its own agent.</summary>
    public void Register(string id, string name, string? address, int port, string[]? tags = null, Dictionary<string, string>? meta = null,
        int passingWeight = 1, int warningWeight = 1, string status = "passing")
    {
        lock (_gate)
        {
            var instance = new Instance(id, name)
            {
                Address = address ?? "",
                Port = port,
                Tags = tags ?? [],
                Meta = meta ?? [],
                PassingWeight = passingWeight,
                WarningWeight = warningWeight,
                Status = status,
                CheckId = "service:" + id,
            };
            PutLocked(instance);
        }
    }

    /// <summary>Removes an instance directly.</summary>
    public void Deregister(string id)
    {
        lock (_gate)
        {
            if (_instances.Remove(id, out var old))
            {
                BumpLocked(old.Name);
            }
        }
    }

    /// <summary>Sets an instance's check status (<c>passing</c>, <c>warning</c>, <c>critical</c>).</summary>
    public void SetStatus(string id, string status)
    {
        lock (_gate)
        {
            if (_instances.TryGetValue(id, out var instance))
            {
                SetStatusLocked(instance, status);
            }
        }
    }

    /// <summary>Gets a copy of what the agent holds for an instance, or null.</summary>
    public InstanceSnapshot? Find(string id)
    {
        lock (_gate)
        {
            return _instances.TryGetValue(id, out var i)
                ? new InstanceSnapshot(i.Id, i.Name, i.Address, i.Port, i.Tags, new Dictionary<string, string>(i.Meta), i.Status, i.CheckKind, i.Ttl,
                    i.DeregisterAfter, i.HttpUrl, i.Passes, i.Registrations)
                : null;
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await StopAsync();
        try
        {
            await _reaper;
        }
        catch (OperationCanceledException)
        {
        }

        _checker.Dispose();
        _stopping.Dispose();
    }

    private static async Task<FakeConsulAgent> StartAsync(FakeConsulAgent agent)
    {
        await agent.StartServerAsync(0);
        agent._reaper = Task.Run(() => agent.ReapAsync(agent._stopping.Token));
        return agent;
    }

    private async Task StartServerAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        if (_tls is not null)
        {
            builder.WebHost.UseKestrelHttpsConfiguration();
        }

        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, listen =>
        {
            if (_tls is { } tls)
            {
                listen.UseHttps(https => ConfigureHttps(https, tls));
            }
        }));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(2));
        var app = builder.Build();
        app.Run(HandleAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        Port = new Uri(address).Port;
        _app = app;
    }

    private void ConfigureHttps(HttpsConnectionAdapterOptions https, TlsFiles tls)
    {
        https.ServerCertificate = tls.ServerCertificate;
        https.ServerCertificateChain = tls.ServerChain;
        https.ClientCertificateMode = _requireClientCertificate ? ClientCertificateMode.RequireCertificate : ClientCertificateMode.AllowCertificate;
        https.ClientCertificateValidation = (certificate, chain, _) =>
        {
            var trusted = tls.IsIssuedByAuthority(certificate, chain, forServer: false);
            if (trusted)
            {
                _clientSubjects.Enqueue(certificate.Subject);
            }

            return trusted;
        };
    }

    private async Task HandleAsync(HttpContext context)
    {
        var request = context.Request;
        var token = request.Headers["X-Consul-Token"].FirstOrDefault() ?? request.Query["token"].FirstOrDefault();
        _requests.Enqueue(new RecordedRequest(request.Method, request.Path.Value ?? "", request.QueryString.Value ?? "", token));
        try
        {
            if (RequiredToken is not null && !string.Equals(token, RequiredToken, StringComparison.Ordinal))
            {
                await TextAsync(context, 403, "ACL not found");
                return;
            }

            if (FailWith500)
            {
                await TextAsync(context, 500, "rpc error making call: No cluster leader");
                return;
            }

            var path = request.Path.Value ?? "";
            var method = request.Method;
            if (method == "GET" && TryTail(path, "/v1/health/service/", out var name))
            {
                await HealthServiceAsync(context, name);
            }
            else if (method == "PUT" && path == "/v1/agent/service/register")
            {
                await RegisterAsync(context);
            }
            else if (method == "PUT" && TryTail(path, "/v1/agent/service/deregister/", out var id))
            {
                await DeregisterAsync(context, id);
            }
            else if (method is "PUT" && TryTail(path, "/v1/agent/check/pass/", out var passId))
            {
                await UpdateCheckAsync(context, passId, "passing");
            }
            else if (method is "PUT" && TryTail(path, "/v1/agent/check/warn/", out var warnId))
            {
                await UpdateCheckAsync(context, warnId, "warning");
            }
            else if (method is "PUT" && TryTail(path, "/v1/agent/check/fail/", out var failId))
            {
                await UpdateCheckAsync(context, failId, "critical");
            }
            else if (method == "GET" && TryTail(path, "/v1/agent/service/", out var serviceId))
            {
                await AgentServiceAsync(context, serviceId);
            }
            else
            {
                await TextAsync(context, 405, $"method {method} not allowed");
            }
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
        }
    }

    private async Task HealthServiceAsync(HttpContext context, string name)
    {
        var query = context.Request.Query;
        var dc = query["dc"].FirstOrDefault();
        if (!string.IsNullOrEmpty(dc) && !string.Equals(dc, Datacenter, StringComparison.Ordinal))
        {
            await TextAsync(context, 500, "No path to datacenter");
            return;
        }

        var passing = query.ContainsKey("passing") && query["passing"].FirstOrDefault() is not ("false" or "0");
        var tags = query["tag"].Where(t => !string.IsNullOrEmpty(t)).Select(t => t!).ToArray();
        if (_faults.TryDequeue(out var fault))
        {
            await ServeFaultAsync(context, fault, name, passing, tags);
            return;
        }

        if (BuggyZeroIndex)
        {
            context.Response.Headers["X-Consul-Index"] = "0";
            await JsonAsync(context, Snapshot(name, passing, tags));
            return;
        }

        long minIndex = 0;
        if (query.TryGetValue("index", out var indexText) && !long.TryParse(indexText, NumberStyles.None, CultureInfo.InvariantCulture, out minIndex))
        {
            await TextAsync(context, 400, "Invalid index");
            return;
        }

        var wait = s_defaultWait;
        if (query.TryGetValue("wait", out var waitText) && !GoDurationParser.TryParse(waitText, out wait))
        {
            await TextAsync(context, 400, "Invalid wait time");
            return;
        }

        wait = wait > s_maxWait ? s_maxWait : wait;
        if (minIndex > 0)
        {
            var started = _time.GetTimestamp();
            long generation;
            long releases;
            lock (_gate)
            {
                generation = _generation;
                releases = _releases;
            }

            _parked[context] = 0;
            try
            {
                while (true)
                {
                    Task changed;
                    lock (_gate)
                    {
                        if (IndexForLocked(name) > minIndex || _generation != generation || _releases != releases)
                        {
                            break;
                        }

                        changed = _changed.Task;
                    }

                    var remaining = wait - _time.GetElapsedTime(started);
                    if (remaining <= TimeSpan.Zero)
                    {
                        break;
                    }

                    await Task.WhenAny(changed, Task.Delay(remaining, _time, context.RequestAborted));
                    context.RequestAborted.ThrowIfCancellationRequested();
                }
            }
            finally
            {
                _parked.TryRemove(context, out _);
            }
        }

        if (Interlocked.Decrement(ref _malformed) >= 0)
        {
            lock (_gate)
            {
                context.Response.Headers["X-Consul-Index"] = IndexForLocked(name).ToString(CultureInfo.InvariantCulture);
            }

            context.Response.ContentType = "application/json";
            await context.Response.WriteAsync("[{\"Node\":{\"Node\":\"" + NodeName + "\",\"Address\":", context.RequestAborted);
            return;
        }

        Interlocked.Exchange(ref _malformed, 0);
        await JsonAsync(context, Snapshot(name, passing, tags, context.Response.Headers));
    }

    private async Task ServeFaultAsync(HttpContext context, ConsulFault fault, string name, bool passing, string[] tags)
    {
        var response = context.Response;
        var aborted = context.RequestAborted;
        switch (fault.Kind)
        {
            case ConsulFaultKind.Body:
                SetIndex(response, fault.IndexHeader, name);
                response.StatusCode = fault.Status;
                response.ContentType = "application/json";
                await WriteInChunksAsync(response, fault.Payload, aborted);
                break;
            case ConsulFaultKind.RealAnswer:
            {
                var snapshot = Snapshot(name, passing, tags);
                SetIndex(response, fault.IndexHeader, name);
                await JsonAsync(context, snapshot);
                break;
            }

            case ConsulFaultKind.EchoTokenInIndex:
            {
                var snapshot = Snapshot(name, passing, tags);
                response.Headers["X-Consul-Index"] = context.Request.Headers["X-Consul-Token"].FirstOrDefault() ?? "";
                await JsonAsync(context, snapshot);
                break;
            }

            case ConsulFaultKind.Oversized:
            {
                var body = s_oversized.GetOrAdd(fault.Size, OversizedBody);
                SetIndex(response, null, name);
                response.StatusCode = 200;
                response.ContentType = "application/json";
                if (fault.DeclareLength)
                {
                    response.ContentLength = body.Length;
                }

                await WriteInChunksAsync(response, body, aborted);
                break;
            }

            case ConsulFaultKind.Cut:
                context.Abort();
                break;
            case ConsulFaultKind.CutMidBody:
            {
                var bytes = Encoding.UTF8.GetBytes(Snapshot(name, passing, tags).ToJsonString());
                SetIndex(response, null, name);
                response.StatusCode = 200;
                response.ContentType = "application/json";
                response.ContentLength = bytes.Length;
                await response.Body.WriteAsync(bytes.AsMemory(0, Math.Max(1, bytes.Length / 2)), aborted);
                await response.Body.FlushAsync(aborted);
                context.Abort();
                break;
            }

            case ConsulFaultKind.Stall:
                _stalled[context] = 0;
                try
                {
                    using var stop = CancellationTokenSource.CreateLinkedTokenSource(aborted, _stopping.Token);
                    await Task.Delay(Timeout.Infinite, stop.Token);
                }
                catch (OperationCanceledException)
                {
                }
                finally
                {
                    _stalled.TryRemove(context, out _);
                }

                break;
            case ConsulFaultKind.Drip:
                _stalled[context] = 0;
                try
                {
                    SetIndex(response, null, name);
                    response.StatusCode = 200;
                    response.ContentType = "application/json";
                    await response.Body.WriteAsync("["u8.ToArray(), aborted);
                    await response.Body.FlushAsync(aborted);
                    for (var i = 0; i < 10_000 && !aborted.IsCancellationRequested && !_stopping.IsCancellationRequested; i++)
                    {
                        await Task.Delay(fault.Interval, _time, aborted);
                        await response.Body.WriteAsync(" "u8.ToArray(), aborted);
                        await response.Body.FlushAsync(aborted);
                    }
                }
                catch (OperationCanceledException)
                {
                }
                finally
                {
                    _stalled.TryRemove(context, out _);
                }

                break;
            case ConsulFaultKind.EchoToken:
            {
                var token = context.Request.Headers["X-Consul-Token"].FirstOrDefault() ?? "";
                response.Headers["X-Echo-Token"] = token;
                response.StatusCode = fault.Status;
                response.ContentType = "text/plain; charset=utf-8";

                // The bare token starts 240 characters in: a client that cuts the body to 256 characters before masking
                // the token would leave its first 16 characters in the message.
                var body = new string('.', 200) + " permission denied for token " + token + " (X-Consul-Token: " + token + ") "
                    + "{\"Token\":\"" + token + "\",\"Authorization\":\"Bearer " + token + "\"}";
                await response.WriteAsync(body, aborted);
                break;
            }
        }
    }

    /// <summary>
    /// Writes a large body from an array built beforehand in 64 KB writes, each flushed: the server's buffers are reused
    /// and the agent itself allocates next to nothing per answer, so a test can measure what the client allocates.
    /// </summary>
    private static async Task WriteInChunksAsync(HttpResponse response, byte[] body, CancellationToken aborted)
    {
        for (var offset = 0; offset < body.Length; offset += 64 * 1024)
        {
            await response.Body.WriteAsync(body.AsMemory(offset, Math.Min(64 * 1024, body.Length - offset)), aborted);
            await response.Body.FlushAsync(aborted);
        }
    }

    private void SetIndex(HttpResponse response, string? header, string name)
    {
        if (header == ConsulFault.OmitIndex)
        {
            return;
        }

        if (header is null)
        {
            lock (_gate)
            {
                header = IndexForLocked(name).ToString(CultureInfo.InvariantCulture);
            }
        }

        response.Headers["X-Consul-Index"] = header;
    }

    private static byte[] OversizedBody(int size)
    {
        var text = new StringBuilder("[");
        for (var i = 0; text.Length < size; i++)
        {
            if (i > 0)
            {
                text.Append(',');
            }

            var entry = new JsonObject
            {
                ["Node"] = new JsonObject { ["Node"] = "node-" + i, ["Address"] = "10.0.0.1", ["Datacenter"] = "dc1", ["Meta"] = new JsonObject { ["rack"] = "r1" } },
                ["Service"] = new JsonObject
                {
                    ["ID"] = "bulk-" + i, ["Service"] = "bulk", ["Tags"] = new JsonArray("v2"), ["Address"] = "10.1.0.1", ["Port"] = 8080,
                    ["Meta"] = new JsonObject { ["version"] = "2.3" }, ["Weights"] = new JsonObject { ["Passing"] = 1, ["Warning"] = 1 },
                },
                ["Checks"] = new JsonArray(new JsonObject { ["CheckID"] = "serfHealth", ["Status"] = "passing", ["Output"] = "Agent alive and reachable" }),
            };
            text.Append(entry.ToJsonString());
        }

        return Encoding.UTF8.GetBytes(text.Append(']').ToString());
    }

    private JsonArray Snapshot(string name, bool passingOnly, string[] tags, IHeaderDictionary? headers = null)
    {
        lock (_gate)
        {
            headers?["X-Consul-Index"] = IndexForLocked(name).ToString(CultureInfo.InvariantCulture);
            var array = new JsonArray();
            foreach (var i in _instances.Values.Where(i => string.Equals(i.Name, name, StringComparison.OrdinalIgnoreCase)).OrderBy(i => i.Id, StringComparer.Ordinal))
            {
                if ((passingOnly && i.Status != "passing") || tags.Any(t => !i.Tags.Contains(t, StringComparer.Ordinal)))
                {
                    continue;
                }

                array.Add(new JsonObject
                {
                    ["Node"] = new JsonObject
                    {
                        ["ID"] = "8f2a6b3e-0000-4000-8000-000000000001",
                        ["Node"] = NodeName,
                        ["Address"] = NodeAddress,
                        ["Datacenter"] = Datacenter,
                        ["TaggedAddresses"] = new JsonObject { ["lan"] = NodeAddress, ["wan"] = NodeAddress },
                        ["Meta"] = ToJson(NodeMeta),
                        ["CreateIndex"] = 5,
                        ["ModifyIndex"] = 5,
                    },
                    ["Service"] = new JsonObject
                    {
                        ["ID"] = i.Id,
                        ["Service"] = i.Name,
                        ["Tags"] = new JsonArray(i.Tags.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
                        ["Address"] = i.Address,
                        ["Meta"] = ToJson(i.Meta),
                        ["Port"] = i.Port,
                        ["Weights"] = new JsonObject { ["Passing"] = i.PassingWeight, ["Warning"] = i.WarningWeight },
                        ["EnableTagOverride"] = false,
                        ["CreateIndex"] = i.CreateIndex,
                        ["ModifyIndex"] = i.ModifyIndex,
                    },
                    ["Checks"] = new JsonArray(
                        new JsonObject
                        {
                            ["Node"] = NodeName, ["CheckID"] = "serfHealth", ["Name"] = "Serf Health Status", ["Status"] = "passing",
                            ["Output"] = "Agent alive and reachable", ["ServiceID"] = "", ["ServiceName"] = "",
                        },
                        new JsonObject
                        {
                            ["Node"] = NodeName, ["CheckID"] = i.CheckId, ["Name"] = "Service '" + i.Name + "' check", ["Status"] = i.Status,
                            ["Output"] = "", ["ServiceID"] = i.Id, ["ServiceName"] = i.Name, ["Type"] = i.CheckKind,
                        }),
                });
            }

            return array;
        }
    }

    private async Task RegisterAsync(HttpContext context)
    {
        JsonNode? body;
        try
        {
            body = await JsonNode.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
        }
        catch (JsonException ex)
        {
            await TextAsync(context, 400, "Request decode failed: " + ex.Message);
            return;
        }

        var name = body?["Name"]?.GetValue<string>();
        if (string.IsNullOrEmpty(name))
        {
            await TextAsync(context, 400, "Missing service name");
            return;
        }

        var id = body!["ID"]?.GetValue<string>() is { Length: > 0 } given ? given : name;
        var instance = new Instance(id, name)
        {
            Address = body["Address"]?.GetValue<string>() ?? "",
            Port = body["Port"]?.GetValue<int>() ?? 0,
            Tags = body["Tags"]?.AsArray().Select(t => t!.GetValue<string>()).ToArray() ?? [],
            Meta = body["Meta"]?.AsObject().ToDictionary(p => p.Key, p => p.Value!.GetValue<string>()) ?? [],
            PassingWeight = body["Weights"]?["Passing"]?.GetValue<int>() ?? 1,
            WarningWeight = body["Weights"]?["Warning"]?.GetValue<int>() ?? 1,
            CheckId = "service:" + id,
        };

        var check = body["Check"] ?? body["Checks"]?.AsArray().FirstOrDefault();
        string? initialStatus = null;
        if (check is not null)
        {
            instance.CheckId = check["CheckID"]?.GetValue<string>() is { Length: > 0 } checkId ? checkId : "service:" + id;
            initialStatus = check["Status"]?.GetValue<string>();
            if (check["TTL"]?.GetValue<string>() is { } ttlText)
            {
                if (!GoDurationParser.TryParse(ttlText, out var ttl) || ttl <= TimeSpan.Zero)
                {
                    await TextAsync(context, 400, "Invalid check: TTL must be > 0 for TTL checks");
                    return;
                }

                instance.CheckKind = "ttl";
                instance.Ttl = ttl;
            }
            else if (check["HTTP"]?.GetValue<string>() is { } url)
            {
                if (!GoDurationParser.TryParse(check["Interval"]?.GetValue<string>(), out var interval) || interval <= TimeSpan.Zero)
                {
                    await TextAsync(context, 400, "Invalid check: Interval must be > 0 for Script, HTTP, or TCP checks");
                    return;
                }

                instance.CheckKind = "http";
                instance.HttpUrl = url;
                instance.Interval = interval;
                instance.Timeout = GoDurationParser.TryParse(check["Timeout"]?.GetValue<string>(), out var timeout) ? timeout : TimeSpan.FromSeconds(10);
            }
            else
            {
                await TextAsync(context, 400, "Invalid check: must have TTL or HTTP");
                return;
            }

            if (check["DeregisterCriticalServiceAfter"]?.GetValue<string>() is { } deregisterText)
            {
                if (!GoDurationParser.TryParse(deregisterText, out var deregisterAfter))
                {
                    await TextAsync(context, 400, "Invalid check: bad DeregisterCriticalServiceAfter");
                    return;
                }

                instance.DeregisterAfter = deregisterAfter;
            }
        }

        lock (_gate)
        {
            // Consul keeps an existing check's status when the definition gives none; new checks start critical.
            instance.Status = initialStatus ?? (_instances.TryGetValue(id, out var existing) ? existing.Status : check is null ? "passing" : "critical");
            instance.Registrations = (_instances.TryGetValue(id, out var previous) ? previous.Registrations : 0) + 1;
            PutLocked(instance);
        }

        context.Response.StatusCode = 200;
    }

    private async Task DeregisterAsync(HttpContext context, string id)
    {
        lock (_gate)
        {
            if (_instances.Remove(id, out var old))
            {
                BumpLocked(old.Name);
                context.Response.StatusCode = 200;
                return;
            }
        }

        await TextAsync(context, 404, $"Unknown service ID \"{id}\". Ensure that the service ID is passed, not the service name.");
    }

    private async Task UpdateCheckAsync(HttpContext context, string checkId, string status)
    {
        lock (_gate)
        {
            var instance = _instances.Values.FirstOrDefault(i => string.Equals(i.CheckId, checkId, StringComparison.Ordinal));
            if (instance is not null && instance.CheckKind == "ttl")
            {
                instance.LastPass = _time.GetTimestamp();
                instance.Passes++;
                SetStatusLocked(instance, status);
                context.Response.StatusCode = 200;
                return;
            }

            if (instance is not null)
            {
                context.Response.StatusCode = 500;
            }
        }

        if (context.Response.StatusCode == 500)
        {
            await TextAsync(context, 500, $"CheckID \"{checkId}\" does not have associated TTL");
            return;
        }

        await TextAsync(context, 404, $"Unknown check ID \"{checkId}\". Ensure that the check ID is passed, not the check name.");
    }

    private async Task AgentServiceAsync(HttpContext context, string id)
    {
        JsonObject? json = null;
        lock (_gate)
        {
            if (_instances.TryGetValue(id, out var i))
            {
                json = new JsonObject
                {
                    ["ID"] = i.Id,
                    ["Service"] = i.Name,
                    ["Tags"] = new JsonArray(i.Tags.Select(t => (JsonNode)JsonValue.Create(t)!).ToArray()),
                    ["Meta"] = ToJson(i.Meta),
                    ["Port"] = i.Port,
                    ["Address"] = i.Address,
                    ["Weights"] = new JsonObject { ["Passing"] = i.PassingWeight, ["Warning"] = i.WarningWeight },
                    ["ContentHash"] = i.ModifyIndex.ToString("x16", CultureInfo.InvariantCulture),
                    ["Datacenter"] = Datacenter,
                };
            }
        }

        if (json is null)
        {
            await TextAsync(context, 404, $"unknown service ID: {id}");
            return;
        }

        await JsonAsync(context, json);
    }

    private async Task ReapAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(ReaperInterval, _time, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var now = _time.GetTimestamp();
            List<Instance> httpDue = [];
            lock (_gate)
            {
                foreach (var instance in _instances.Values.ToList())
                {
                    if (instance.CheckKind == "ttl" && instance.Status != "critical" && _time.GetElapsedTime(instance.LastPass, now) > instance.Ttl)
                    {
                        SetStatusLocked(instance, "critical");
                    }

                    if (instance.CheckKind == "http" && !instance.CheckRunning && now >= instance.NextCheck)
                    {
                        instance.CheckRunning = true;
                        instance.NextCheck = now + (long)(instance.Interval.TotalSeconds * _time.TimestampFrequency);
                        httpDue.Add(instance);
                    }

                    if (instance.Status == "critical" && instance.DeregisterAfter is { } after && _time.GetElapsedTime(instance.CriticalSince, now) > after)
                    {
                        _instances.Remove(instance.Id);
                        BumpLocked(instance.Name);
                    }
                }
            }

            foreach (var instance in httpDue)
            {
                _ = RunHttpCheckAsync(instance, cancellationToken);
            }
        }
    }

    private async Task RunHttpCheckAsync(Instance instance, CancellationToken cancellationToken)
    {
        string status;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(instance.Timeout);
            using var response = await _checker.GetAsync(instance.HttpUrl, timeout.Token);
            status = (int)response.StatusCode is >= 200 and < 300 ? "passing" : response.StatusCode == HttpStatusCode.TooManyRequests ? "warning" : "critical";
        }
        catch (Exception) when (!cancellationToken.IsCancellationRequested)
        {
            status = "critical";
        }
        catch (OperationCanceledException)
        {
            return;
        }

        lock (_gate)
        {
            instance.CheckRunning = false;
            if (_instances.TryGetValue(instance.Id, out var current) && ReferenceEquals(current, instance))
            {
                SetStatusLocked(instance, status);
            }
        }
    }

    private void PutLocked(Instance instance)
    {
        if (_instances.TryGetValue(instance.Id, out var old))
        {
            instance.CreateIndex = old.CreateIndex;
            if (!string.Equals(old.Name, instance.Name, StringComparison.OrdinalIgnoreCase))
            {
                BumpLocked(old.Name);
            }
        }

        instance.LastPass = _time.GetTimestamp();
        instance.CriticalSince = instance.LastPass;
        instance.NextCheck = instance.LastPass;
        _instances[instance.Id] = instance;
        BumpLocked(instance.Name);
        if (instance.CreateIndex == 0)
        {
            instance.CreateIndex = instance.ModifyIndex;
        }
    }

    private void SetStatusLocked(Instance instance, string status)
    {
        if (instance.Status == status)
        {
            return;
        }

        instance.Status = status;
        if (status == "critical")
        {
            instance.CriticalSince = _time.GetTimestamp();
        }

        BumpLocked(instance.Name);
    }

    private void BumpLocked(string name)
    {
        _index++;
        _serviceIndex[name] = _index;
        foreach (var instance in _instances.Values.Where(i => string.Equals(i.Name, name, StringComparison.OrdinalIgnoreCase)))
        {
            instance.ModifyIndex = _index;
        }

        WakeLocked();
    }

    private void ResetIndexLocked(long to)
    {
        _index = to;
        foreach (var name in _serviceIndex.Keys.ToList())
        {
            _serviceIndex[name] = Math.Min(_serviceIndex[name], to);
        }

        // A snapshot restore abandons the state store: every blocked query returns at once.
        _generation++;
        WakeLocked();
    }

    private void WakeLocked()
    {
        var changed = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }

    private long IndexForLocked(string name) => _serviceIndex.TryGetValue(name, out var index) ? index : _index;

    private static bool TryTail(string path, string prefix, out string tail)
    {
        tail = path.StartsWith(prefix, StringComparison.Ordinal) ? Uri.UnescapeDataString(path[prefix.Length..]) : "";
        return tail.Length > 0;
    }

    private static JsonObject ToJson(Dictionary<string, string> values)
    {
        var json = new JsonObject();
        foreach (var pair in values)
        {
            json[pair.Key] = pair.Value;
        }

        return json;
    }

    private static async Task TextAsync(HttpContext context, int status, string text)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        await context.Response.WriteAsync(text, context.RequestAborted);
    }

    private static async Task JsonAsync(HttpContext context, JsonNode json)
    {
        context.Response.StatusCode = 200;
        context.Response.ContentType = "application/json";
        context.Response.Headers["X-Consul-KnownLeader"] = "true";
        context.Response.Headers["X-Consul-LastContact"] = "0";
        await context.Response.WriteAsync(json.ToJsonString(), context.RequestAborted);
    }

    private sealed class Instance(string id, string name)
    {
        public string Id { get; } = id;
        public string Name { get; } = name;
        public string Address { get; set; } = "";
        public int Port { get; set; }
        public string[] Tags { get; set; } = [];
        public Dictionary<string, string> Meta { get; set; } = [];
        public int PassingWeight { get; set; } = 1;
        public int WarningWeight { get; set; } = 1;
        public string CheckId { get; set; } = "";
        public string CheckKind { get; set; } = "";
        public string Status { get; set; } = "passing";
        public TimeSpan Ttl { get; set; }
        public TimeSpan Interval { get; set; }
        public TimeSpan Timeout { get; set; }
        public string? HttpUrl { get; set; }
        public TimeSpan? DeregisterAfter { get; set; }
        public long LastPass { get; set; }
        public long CriticalSince { get; set; }
        public long NextCheck { get; set; }
        public bool CheckRunning { get; set; }
        public int Passes { get; set; }
        public int Registrations { get; set; }
        public long CreateIndex { get; set; }
        public long ModifyIndex { get; set; }
    }
}

/// <summary>One request the fake agent received.</summary>
public sealed record RecordedRequest(string Method, string Path, string Query, string? Token)
{
    /// <summary>Gets the blocking index the request waited on (its <c>index</c> query parameter), or null when it did not block.</summary>
    public long? Index => QueryHelpers.ParseQuery(Query).TryGetValue("index", out var value)
        && long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var index) ? index : null;
}

/// <summary>A copy of what the fake agent holds for one instance.</summary>
public sealed record InstanceSnapshot(string Id, string Name, string Address, int Port, string[] Tags, Dictionary<string, string> Meta, string Status,
    string CheckKind, TimeSpan Ttl, TimeSpan? DeregisterCriticalServiceAfter, string? HttpUrl, int Passes, int Registrations);
