using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Threading.Channels;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Lodestar.Testing.Xds;

/// <summary>
/// An xDS management server for tests: the aggregated discovery service (state of the world and delta) on 127.0.0.1
/// over HTTP/2 without TLS, or on a unix socket, serving whatever resources the test sets, and recording every request.
/// </summary>
/// <remarks>
/// <para>Protocol: a state-of-the-world request that subscribes to new names (or is the first of its type on a
/// stream) is answered with every subscribed resource of the type; an ACK or NACK is not answered. Every change to a
/// resource is pushed at once to every stream subscribed to its type, with a new version and a new nonce. In delta,
/// subscribed resources are sent when subscribed (unless the client already holds that version) and when they change,
/// and removals go in <c>removed_resources</c>.</para>
/// <para>Failure modes: invalid resources (<see cref="SetRawResource"/>), removal, silence (<see cref="Silent"/>), a
/// stream reset instead of the next response (<see cref="ResetOnNextResponse"/>), other nonces
/// (<see cref="NoncePrefix"/>), an outage (<see cref="StopAsync"/> then <see cref="StartAgainAsync"/>), and no delta support.</para>
/// </remarks>
public sealed class FakeXdsServer : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, Dictionary<string, (Any Resource, int Version)>> _resources = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _typeVersions = new(StringComparer.Ordinal);
    private readonly List<StreamState> _streams = [];
    private readonly List<XdsRequestRecord> _requests = [];
    private readonly List<XdsResponseRecord> _responses = [];
    private readonly List<string> _authorizations = [];
    private readonly List<TaskCompletionSource> _requestWaiters = [];
    private readonly string? _unixSocketPath;
    private readonly X509Certificate2? _certificate;
    private readonly X509Certificate2Collection? _chain;
    private WebApplication? _app;
    private int _streamCount;
    private int _nonceCounter;
    private int _port;

    private FakeXdsServer(string? unixSocketPath, bool supportsDelta, X509Certificate2? certificate, X509Certificate2Collection? chain)
    {
        _unixSocketPath = unixSocketPath;
        _certificate = certificate;
        _chain = chain;
        SupportsDelta = supportsDelta;
    }

    /// <summary>Gets whether the server implements <c>DeltaAggregatedResources</c> (otherwise it answers UNIMPLEMENTED).</summary>
    public bool SupportsDelta { get; }

    /// <summary>Gets or sets whether the server answers nothing (requests are still recorded; pushes are held back).</summary>
    public bool Silent { get; set; }

    /// <summary>Gets or sets whether the next response is replaced by a reset of its stream.</summary>
    public bool ResetOnNextResponse { get; set; }

    /// <summary>
    /// Gets or sets a status every new stream is failed with at once (a control plane refusing the client, whose detail
    /// may echo what the client sent), or <see langword="null"/> (default) to serve streams.
    /// </summary>
    public Status? RejectStreams { get; set; }

    /// <summary>Gets or sets the prefix of the nonces the server sends (default <c>nonce-</c>).</summary>
    public string NoncePrefix { get; set; } = "nonce-";

    /// <summary>Gets the TCP port (0 on a unix socket).</summary>
    public int Port => _port;

    /// <summary>Gets the gRPC target of the server, as a bootstrap's <c>server_uri</c>.</summary>
    public string Target => _unixSocketPath is null ? $"127.0.0.1:{_port.ToString(CultureInfo.InvariantCulture)}" : "unix://" + _unixSocketPath;

    /// <summary>Gets how many streams the server has accepted.</summary>
    public int StreamsOpened => Volatile.Read(ref _streamCount);

    /// <summary>Gets the streams open now.</summary>
    public int OpenStreams
    {
        get
        {
            lock (_gate)
            {
                return _streams.Count;
            }
        }
    }

    /// <summary>Gets every request received so far.</summary>
    public IReadOnlyList<XdsRequestRecord> Requests
    {
        get
        {
            lock (_gate)
            {
                return [.. _requests];
            }
        }
    }

    /// <summary>Gets every response sent so far.</summary>
    public IReadOnlyList<XdsResponseRecord> Responses
    {
        get
        {
            lock (_gate)
            {
                return [.. _responses];
            }
        }
    }

    /// <summary>Gets the <c>authorization</c> header of each stream, in order (null when absent).</summary>
    public IReadOnlyList<string> Authorizations
    {
        get
        {
            lock (_gate)
            {
                return [.. _authorizations];
            }
        }
    }

    /// <summary>
    /// Starts a server on a free loopback port, or on <paramref name="unixSocketPath"/> when given; with
    /// <paramref name="certificate"/> (with its private key) it speaks TLS, sending <paramref name="chain"/> as
    /// intermediates, else HTTP/2 in clear text.
    /// </summary>
    public static async Task<FakeXdsServer> StartAsync(string? unixSocketPath = null, bool supportsDelta = true, X509Certificate2? certificate = null, X509Certificate2Collection? chain = null)
    {
        var server = new FakeXdsServer(unixSocketPath, supportsDelta, certificate, chain);
        await server.StartListeningAsync(0);
        return server;
    }

    /// <summary>
    /// Returns a gRPC xDS bootstrap pointing at this server: <c>insecure</c> channel credentials, or <c>tls</c> trusting
    /// <paramref name="caCertificateFile"/> when the server speaks TLS.
    /// </summary>
    public string Bootstrap(string nodeId = "lodestar-test~127.0.0.1~test.default~default.svc.cluster.local", IEnumerable<string>? serverFeatures = null, string? tokenFile = null, string? caCertificateFile = null)
    {
        var channelCreds = _certificate is null
            ? """{ "type": "insecure" }"""
            : $$"""{ "type": "tls", "config": { "ca_certificate_file": "{{caCertificateFile}}" } }""";
        var features = string.Join(", ", (serverFeatures ?? ["xds_v3"]).Select(static f => "\"" + f + "\""));
        var callCreds = tokenFile is null ? string.Empty : $$""", "call_creds": [ { "type": "jwt_token_file", "config": { "jwt_token_file": "{{tokenFile}}" } } ]""";
        return $$"""
            {
              "xds_servers": [ { "server_uri": "{{Target}}", "channel_creds": [ {{channelCreds}} ], "server_features": [ {{features}} ]{{callCreds}} } ],
              "node": { "id": "{{nodeId}}", "cluster": "test", "locality": { "zone": "zone-a" }, "metadata": { "GENERATOR": "grpc" } }
            }
            """;
    }

    /// <summary>Sets (adds or replaces) a resource and pushes it to every subscribed stream.</summary>
    public void SetResource(string typeUrl, string name, IMessage resource)
        => SetAny(typeUrl, name, Any.Pack(resource));

    /// <summary>Sets several resources of one type at once: one new version, one push.</summary>
    public void SetResources(string typeUrl, IEnumerable<(string Name, IMessage Resource)> resources)
    {
        lock (_gate)
        {
            var version = NextTypeVersion_NeedsLock(typeUrl);
            foreach (var (name, resource) in resources)
            {
                Table_NeedsLock(typeUrl)[name] = (Any.Pack(resource), version);
            }
        }

        Push(typeUrl);
    }

    /// <summary>Sets a resource from raw bytes under any type URL (for resources a client must reject) and pushes it.</summary>
    public void SetRawResource(string typeUrl, string name, ByteString value, string? anyTypeUrl = null)
        => SetAny(typeUrl, name, new Any { TypeUrl = anyTypeUrl ?? typeUrl, Value = value });

    /// <summary>Removes a resource and pushes the change.</summary>
    public void RemoveResource(string typeUrl, string name)
    {
        lock (_gate)
        {
            if (!Table_NeedsLock(typeUrl).Remove(name))
            {
                return;
            }

            NextTypeVersion_NeedsLock(typeUrl);
        }

        Push(typeUrl);
    }

    /// <summary>Resets every open stream (the client sees the stream fail).</summary>
    public void ResetStreams()
    {
        lock (_gate)
        {
            foreach (var stream in _streams)
            {
                stream.Abort();
            }
        }
    }

    /// <summary>Stops listening and resets every stream.</summary>
    public async Task StopAsync()
    {
        ResetStreams();
        if (_app is { } app)
        {
            _app = null;
            using var stopTimeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            await app.StopAsync(stopTimeout.Token);
            await app.DisposeAsync();
        }
    }

    /// <summary>Listens again on the port (or socket) of the first start.</summary>
    public Task StartAgainAsync() => StartListeningAsync(_port);

    /// <summary>Waits until a request recorded after the first <paramref name="skip"/> ones matches, and returns it.</summary>
    public async Task<XdsRequestRecord> WaitForRequestAsync(Func<XdsRequestRecord, bool> predicate, int skip = 0, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (true)
        {
            TaskCompletionSource waiter;
            lock (_gate)
            {
                for (var i = skip; i < _requests.Count; i++)
                {
                    if (predicate(_requests[i]))
                    {
                        return _requests[i];
                    }
                }

                waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _requestWaiters.Add(waiter);
            }

            var remaining = deadline - DateTime.UtcNow;
            if (remaining <= TimeSpan.Zero || await Task.WhenAny(waiter.Task, Task.Delay(remaining)) != waiter.Task)
            {
                throw new TimeoutException($"No matching xDS request arrived. Requests so far:\n{string.Join("\n", Requests)}");
            }
        }
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        if (_unixSocketPath is not null && File.Exists(_unixSocketPath))
        {
            File.Delete(_unixSocketPath);
        }
    }

    internal async Task HandleSotwAsync(IAsyncStreamReader<DiscoveryRequest> requests, IServerStreamWriter<DiscoveryResponse> responses, ServerCallContext context)
    {
        var stream = Open(context, delta: false);
        var writer = WriteLoopAsync(stream, responses, context);
        try
        {
            await foreach (var request in requests.ReadAllAsync(stream.Cancellation.Token))
            {
                Record(stream, request);
                bool respond;
                lock (_gate)
                {
                    var names = request.ResourceNames.ToHashSet(StringComparer.Ordinal);
                    var known = stream.SotwSubscriptions.TryGetValue(request.TypeUrl, out var previous);
                    respond = !known || !previous!.SetEquals(names);
                    stream.SotwSubscriptions[request.TypeUrl] = names;
                }

                if (respond)
                {
                    SendSotw(stream, request.TypeUrl);
                }
            }
        }
        finally
        {
            Close(stream);
            await writer;
        }
    }

    internal async Task HandleDeltaAsync(IAsyncStreamReader<DeltaDiscoveryRequest> requests, IServerStreamWriter<DeltaDiscoveryResponse> responses, ServerCallContext context)
    {
        if (!SupportsDelta)
        {
            throw new RpcException(new Status(StatusCode.Unimplemented, "This server does not implement DeltaAggregatedResources."));
        }

        var stream = Open(context, delta: true);
        var writer = WriteLoopAsync(stream, responses, context);
        try
        {
            await foreach (var request in requests.ReadAllAsync(stream.Cancellation.Token))
            {
                Record(stream, request);
                List<string> toSend;
                lock (_gate)
                {
                    if (!stream.DeltaSubscriptions.TryGetValue(request.TypeUrl, out var subscribed))
                    {
                        subscribed = new HashSet<string>(StringComparer.Ordinal);
                        stream.DeltaSubscriptions[request.TypeUrl] = subscribed;
                    }

                    foreach (var (name, version) in request.InitialResourceVersions)
                    {
                        stream.DeltaSent[(request.TypeUrl, name)] = version;
                    }

                    foreach (var name in request.ResourceNamesUnsubscribe)
                    {
                        subscribed.Remove(name);
                        stream.DeltaSent.TryRemove((request.TypeUrl, name), out _);
                    }

                    toSend = [];
                    foreach (var name in request.ResourceNamesSubscribe)
                    {
                        subscribed.Add(name);
                        toSend.Add(name);
                    }
                }

                if (toSend.Count > 0)
                {
                    SendDelta(stream, request.TypeUrl, toSend, force: request.InitialResourceVersions.Count == 0);
                }
            }
        }
        finally
        {
            Close(stream);
            await writer;
        }
    }

    private async Task StartListeningAsync(int port)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddGrpc();
        builder.Services.AddSingleton(this);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            if (_unixSocketPath is not null)
            {
                if (File.Exists(_unixSocketPath))
                {
                    File.Delete(_unixSocketPath);
                }

                kestrel.ListenUnixSocket(_unixSocketPath, Configure);
            }
            else
            {
                kestrel.Listen(IPAddress.Loopback, port, Configure);
            }
        });
        var app = builder.Build();
        app.MapGrpcService<FakeAdsService>();

        void Configure(ListenOptions options)
        {
            options.Protocols = HttpProtocols.Http2;
            if (_certificate is not null)
            {
                options.UseHttps(https =>
                {
                    https.ServerCertificate = _certificate;
                    https.ServerCertificateChain = _chain;
                });
            }
        }

        await app.StartAsync();
        if (_unixSocketPath is null)
        {
            var addresses = app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses;
            _port = new Uri(addresses.First()).Port;
        }

        _app = app;
    }

    private void SetAny(string typeUrl, string name, Any any)
    {
        lock (_gate)
        {
            Table_NeedsLock(typeUrl)[name] = (any, NextTypeVersion_NeedsLock(typeUrl));
        }

        Push(typeUrl);
    }

    private Dictionary<string, (Any Resource, int Version)> Table_NeedsLock(string typeUrl)
    {
        if (!_resources.TryGetValue(typeUrl, out var table))
        {
            table = new Dictionary<string, (Any, int)>(StringComparer.Ordinal);
            _resources[typeUrl] = table;
        }

        return table;
    }

    private int NextTypeVersion_NeedsLock(string typeUrl)
    {
        _typeVersions.TryGetValue(typeUrl, out var version);
        _typeVersions[typeUrl] = ++version;
        return version;
    }

    private void Push(string typeUrl)
    {
        StreamState[] streams;
        lock (_gate)
        {
            streams = [.. _streams];
        }

        foreach (var stream in streams)
        {
            if (stream.IsDelta)
            {
                List<string> names;
                lock (_gate)
                {
                    names = stream.DeltaSubscriptions.TryGetValue(typeUrl, out var subscribed) ? [.. subscribed] : [];
                }

                if (names.Count > 0)
                {
                    SendDelta(stream, typeUrl, names, force: false);
                }
            }
            else
            {
                bool subscribed;
                lock (_gate)
                {
                    subscribed = stream.SotwSubscriptions.ContainsKey(typeUrl);
                }

                if (subscribed)
                {
                    SendSotw(stream, typeUrl);
                }
            }
        }
    }

    private void SendSotw(StreamState stream, string typeUrl)
    {
        if (Silent)
        {
            return;
        }

        DiscoveryResponse response;
        lock (_gate)
        {
            var names = stream.SotwSubscriptions.TryGetValue(typeUrl, out var n) ? n : [];
            var wildcard = names.Count == 0 || names.Contains("*");
            _typeVersions.TryGetValue(typeUrl, out var version);
            response = new DiscoveryResponse
            {
                TypeUrl = typeUrl,
                VersionInfo = version.ToString(CultureInfo.InvariantCulture),
                Nonce = NoncePrefix + (++_nonceCounter).ToString(CultureInfo.InvariantCulture),
            };
            var table = Table_NeedsLock(typeUrl);
            foreach (var (name, entry) in table.OrderBy(static e => e.Key, StringComparer.Ordinal))
            {
                if (wildcard || names.Contains(name))
                {
                    response.Resources.Add(entry.Resource);
                }
            }

            _responses.Add(new XdsResponseRecord(stream.Id, typeUrl, response.VersionInfo, response.Nonce,
                [.. table.Keys.Where(k => wildcard || names.Contains(k)).Order(StringComparer.Ordinal)], []));
        }

        stream.Outbox.Writer.TryWrite(response);
    }

    private void SendDelta(StreamState stream, string typeUrl, IReadOnlyList<string> names, bool force)
    {
        if (Silent)
        {
            return;
        }

        DeltaDiscoveryResponse response;
        lock (_gate)
        {
            var table = Table_NeedsLock(typeUrl);
            _typeVersions.TryGetValue(typeUrl, out var typeVersion);
            response = new DeltaDiscoveryResponse
            {
                TypeUrl = typeUrl,
                SystemVersionInfo = typeVersion.ToString(CultureInfo.InvariantCulture),
                Nonce = NoncePrefix + (++_nonceCounter).ToString(CultureInfo.InvariantCulture),
            };
            foreach (var name in names)
            {
                var key = (typeUrl, name);
                if (table.TryGetValue(name, out var entry))
                {
                    var version = entry.Version.ToString(CultureInfo.InvariantCulture);
                    if (!force && stream.DeltaSent.TryGetValue(key, out var sent) && sent == version)
                    {
                        continue;
                    }

                    stream.DeltaSent[key] = version;
                    response.Resources.Add(new Resource { Name = name, Version = version, Resource_ = entry.Resource });
                }
                else if (stream.DeltaSent.TryRemove(key, out _))
                {
                    response.RemovedResources.Add(name);
                }
            }

            if (response.Resources.Count == 0 && response.RemovedResources.Count == 0)
            {
                return;
            }

            _responses.Add(new XdsResponseRecord(stream.Id, typeUrl, response.SystemVersionInfo, response.Nonce,
                [.. response.Resources.Select(static r => r.Name)], [.. response.RemovedResources]));
        }

        stream.Outbox.Writer.TryWrite(response);
    }

    private StreamState Open(ServerCallContext context, bool delta)
    {
        if (RejectStreams is { } reject)
        {
            lock (_gate)
            {
                _authorizations.Add(context.RequestHeaders.GetValue("authorization") ?? string.Empty);
            }

            Interlocked.Increment(ref _streamCount);
            throw new RpcException(reject);
        }

        var stream = new StreamState(Interlocked.Increment(ref _streamCount), delta, context.CancellationToken);
        lock (_gate)
        {
            _streams.Add(stream);
            _authorizations.Add(context.RequestHeaders.GetValue("authorization") ?? string.Empty);
        }

        return stream;
    }

    private void Close(StreamState stream)
    {
        lock (_gate)
        {
            _streams.Remove(stream);
        }

        stream.Outbox.Writer.TryComplete();
        stream.Abort();
    }

    private async Task WriteLoopAsync<T>(StreamState stream, IServerStreamWriter<T> responses, ServerCallContext context)
    {
        try
        {
            await foreach (var item in stream.Outbox.Reader.ReadAllAsync(stream.Cancellation.Token))
            {
                if (ResetOnNextResponse)
                {
                    ResetOnNextResponse = false;
                    context.GetHttpContext().Abort();
                    stream.Abort();
                    return;
                }

                await responses.WriteAsync((T)item, stream.Cancellation.Token);
            }
        }
        catch (Exception) when (stream.Cancellation.IsCancellationRequested)
        {
            // The stream is gone.
        }
        catch (InvalidOperationException)
        {
            // The call completed while a response was queued.
        }
    }

    private void Record(StreamState stream, DiscoveryRequest request)
        => AddRecord(new XdsRequestRecord(stream.Id, false, request.TypeUrl, request.VersionInfo, request.ResponseNonce,
            [.. request.ResourceNames], [], new Dictionary<string, string>(),
            request.ErrorDetail?.Code, request.ErrorDetail?.Message, request.Node?.Id));

    private void Record(StreamState stream, DeltaDiscoveryRequest request)
        => AddRecord(new XdsRequestRecord(stream.Id, true, request.TypeUrl, string.Empty, request.ResponseNonce,
            [.. request.ResourceNamesSubscribe], [.. request.ResourceNamesUnsubscribe], new Dictionary<string, string>(request.InitialResourceVersions),
            request.ErrorDetail?.Code, request.ErrorDetail?.Message, request.Node?.Id));

    private void AddRecord(XdsRequestRecord record)
    {
        TaskCompletionSource[] waiters;
        lock (_gate)
        {
            _requests.Add(record);
            waiters = [.. _requestWaiters];
            _requestWaiters.Clear();
        }

        foreach (var waiter in waiters)
        {
            waiter.TrySetResult();
        }
    }

    private sealed class StreamState
    {
        public StreamState(int id, bool delta, CancellationToken callCancelled)
        {
            Id = id;
            IsDelta = delta;
            Cancellation = CancellationTokenSource.CreateLinkedTokenSource(callCancelled);
        }

        public int Id { get; }

        public bool IsDelta { get; }

        public CancellationTokenSource Cancellation { get; }

        public Channel<object> Outbox { get; } = Channel.CreateUnbounded<object>();

        public Dictionary<string, HashSet<string>> SotwSubscriptions { get; } = new(StringComparer.Ordinal);

        public Dictionary<string, HashSet<string>> DeltaSubscriptions { get; } = new(StringComparer.Ordinal);

        public ConcurrentDictionary<(string, string), string> DeltaSent { get; } = new();

        public void Abort()
        {
            try
            {
                Cancellation.Cancel();
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }
}

/// <summary>The gRPC service the fake server maps; it hands every stream to the <see cref="FakeXdsServer"/>.</summary>
internal sealed class FakeAdsService(FakeXdsServer server) : AggregatedDiscoveryService.AggregatedDiscoveryServiceBase
{
    public override Task StreamAggregatedResources(IAsyncStreamReader<DiscoveryRequest> requestStream, IServerStreamWriter<DiscoveryResponse> responseStream, ServerCallContext context)
        => server.HandleSotwAsync(requestStream, responseStream, context);

    public override Task DeltaAggregatedResources(IAsyncStreamReader<DeltaDiscoveryRequest> requestStream, IServerStreamWriter<DeltaDiscoveryResponse> responseStream, ServerCallContext context)
        => server.HandleDeltaAsync(requestStream, responseStream, context);
}
