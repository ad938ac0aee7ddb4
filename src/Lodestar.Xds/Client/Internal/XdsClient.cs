using System.Diagnostics;
using System.Threading.Channels;
using Envoy.Config.Core.V3;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Lodestar.Discovery;
using Lodestar.Xds.Bootstrap;
using Lodestar.Xds.Resources;
using Microsoft.Extensions.Logging;

namespace Lodestar.Xds.Client.Internal;

/// <summary>
/// The ADS client of one control plane: one gRPC stream (state of the world, or incremental when enabled and offered)
/// carrying every subscribed resource type; watchers per (type, name) receive typed updates, errors and
/// "does not exist".
/// </summary>
/// <remarks>
/// <para>
/// Protocol rules it keeps (envoy's xDS protocol, gRFC A27): every response is answered, an ACK carrying the response's
/// <c>version_info</c> and <c>nonce</c>; a response with an invalid resource is NACKed with the last accepted version,
/// the response's nonce and an <c>error_detail</c> naming each rejected resource, while the valid resources of the same
/// response are accepted and the rejected ones keep their last accepted version (grpc-go's per-resource rule). In state
/// of the world, an LDS or CDS resource missing from a response has been removed, unless the server has the
/// <c>ignore_resource_deletion</c> feature (gRFC A53). After a reconnect every subscription is sent again, with the
/// last accepted version and no nonce.
/// </para>
/// <para>
/// A subscribed resource that has not arrived <see cref="XdsOptions.ResourceDoesNotExistTimeout"/> after it was
/// requested is reported as not existing; the timers run only while the stream is up. A stream that answers nothing
/// for <see cref="XdsOptions.StallTimeout"/> while a new subscription waits is ended and reopened. Between failed
/// streams the client waits as <see cref="XdsOptions.Backoff"/> says; the backoff starts over once a stream has
/// delivered a response.
/// </para>
/// </remarks>
internal sealed partial class XdsClient : IAsyncDisposable
{
    public const string Wildcard = "*";

    private static readonly Method<DiscoveryRequest, DiscoveryResponse> s_sotwMethod = new(
        MethodType.DuplexStreaming, "envoy.service.discovery.v3.AggregatedDiscoveryService", "StreamAggregatedResources",
        Marshallers.Create(static m => m.ToByteArray(), DiscoveryRequest.Parser.ParseFrom),
        Marshallers.Create(static m => m.ToByteArray(), DiscoveryResponse.Parser.ParseFrom));

    private static readonly Method<DeltaDiscoveryRequest, DeltaDiscoveryResponse> s_deltaMethod = new(
        MethodType.DuplexStreaming, "envoy.service.discovery.v3.AggregatedDiscoveryService", "DeltaAggregatedResources",
        Marshallers.Create(static m => m.ToByteArray(), DeltaDiscoveryRequest.Parser.ParseFrom),
        Marshallers.Create(static m => m.ToByteArray(), DeltaDiscoveryResponse.Parser.ParseFrom));

    private readonly Lock _gate = new();
    private readonly Dictionary<string, TypeState> _types = new(StringComparer.Ordinal);
    private readonly XdsServerConfig[] _servers;
    private readonly XdsTransport[] _transports;
    private readonly Node _node;
    private readonly XdsOptions _options;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly SecretRedactor _redactor;
    private readonly Func<double>? _random;
    private readonly CallbackSerializer _callbacks;
    private readonly CancellationTokenSource _disposed = new();
    private Task? _loop;
    private bool _useDelta;

    // Stream state, guarded by _gate.
    private Channel<object>? _outbox;
    private CancellationTokenSource? _stall;
    private bool _awaitingResponse;
    private Action[] _reconnectListeners = [];

    // Whether the current stream delivered a response; written and read by the stream loop only.
    private bool _receivedOnStream;

    // The server of the current or next stream: an index into the bootstrap's xds_servers (0 is the primary).
    private volatile int _active;

    public XdsClient(XdsBootstrap bootstrap, XdsOptions options, TimeProvider timeProvider, ILogger logger, SecretRedactor? redactor = null, Func<double>? random = null)
    {
        ArgumentNullException.ThrowIfNull(bootstrap);
        _servers = [.. bootstrap.Servers];
        _options = options;
        _timeProvider = timeProvider;
        _logger = logger;
        _redactor = redactor ?? new SecretRedactor();
        _random = random;
        _useDelta = options.UseDelta;
        _transports = [.. _servers.Select(server => new XdsTransport(server, options.TokenPath, _redactor))];
        _node = BuildNode(bootstrap.Node);
        _callbacks = new CallbackSerializer(logger);
    }

    /// <summary>Gets the management server the client talks to, for messages.</summary>
    public string ServerName => ActiveServer.DisplayName;

    /// <summary>Gets the index in the bootstrap's <c>xds_servers</c> of the server of the current or next stream (0: the primary).</summary>
    public int ActiveServerIndex => _active;

    private XdsServerConfig ActiveServer => _servers[_active];

    private XdsTransport ActiveTransport => _transports[_active];

    /// <summary>Gets whether the current or next stream is incremental.</summary>
    public bool UsesDelta => Volatile.Read(ref _useDelta);

    /// <summary>
    /// Calls <paramref name="callback"/> (from the client's callback queue, never under its lock) each time the client
    /// opens a new stream after the previous one failed or was closed.
    /// </summary>
    /// <returns>A handle that stops the calls when disposed.</returns>
    public IDisposable OnReconnect(Action callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        lock (_gate)
        {
            _reconnectListeners = [.. _reconnectListeners, callback];
        }

        return new ReconnectSubscription(this, callback);
    }

    /// <summary>Watches one resource, or every resource of the type when <paramref name="name"/> is <see cref="Wildcard"/>.</summary>
    /// <returns>A handle that ends the watch (and the subscription, when it was the last watcher) when disposed.</returns>
    public IDisposable Watch(XdsResourceType type, string name, IXdsWatcher watcher)
    {
        ArgumentNullException.ThrowIfNull(type);
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(watcher);
        ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);
        lock (_gate)
        {
            if (!_types.TryGetValue(type.TypeUrl, out var state))
            {
                state = new TypeState(type);
                _types.Add(type.TypeUrl, state);
            }

            var isNew = !state.Resources.TryGetValue(name, out var resource);
            if (resource is null)
            {
                resource = new ResourceState(name);
                state.Resources.Add(name, resource);
            }

            resource.Watchers.Add(watcher);
            if (name == Wildcard)
            {
                if (state.HasAnyValue)
                {
                    var snapshot = state.Snapshot();
                    _callbacks.Schedule(() => watcher.OnResourceChanged(snapshot));
                }
            }
            else if (resource.Value is { } value)
            {
                _callbacks.Schedule(() => watcher.OnResourceChanged(value));
            }
            else if (resource.DoesNotExist)
            {
                _callbacks.Schedule(watcher.OnResourceDoesNotExist);
            }

            if (isNew)
            {
                QueueSubscriptionChange_NeedsLock(state, name, subscribe: true);
            }

            _loop ??= StartLoop();
        }

        return new WatchHandle(this, type.TypeUrl, name, watcher);
    }

    /// <summary>
    /// Returns what the client holds now, for diagnostics: per type the accepted version and the last rejection, per
    /// subscribed or received resource its version and state. Taken under the lock; the models are immutable.
    /// </summary>
    public IReadOnlyList<XdsTypeDump> Dump()
    {
        lock (_gate)
        {
            var types = new List<XdsTypeDump>();
            foreach (var state in _types.Values.OrderBy(static t => t.TypeUrl, StringComparer.Ordinal))
            {
                var resources = new List<XdsResourceDump>();
                foreach (var resource in state.Resources.Values)
                {
                    if (resource.Name == Wildcard)
                    {
                        continue;
                    }

                    var status = resource.Value is not null ? "accepted" : resource.DoesNotExist ? "does-not-exist" : "requested";
                    resources.Add(new XdsResourceDump(resource.Name, resource.Version, status, resource.Value, resource.Watchers.Count));
                }

                foreach (var (name, entry) in state.Unwatched)
                {
                    resources.Add(new XdsResourceDump(name, state.UnwatchedVersions.GetValueOrDefault(name), "accepted", entry.Value, 0));
                }

                resources.Sort(static (a, b) => string.CompareOrdinal(a.Name, b.Name));
                types.Add(new XdsTypeDump(state.TypeUrl, state.AcceptedVersion, state.Resources.ContainsKey(Wildcard), state.LastNack, resources, state.Nonce));
            }

            return types;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed.IsCancellationRequested)
        {
            return;
        }

        await _disposed.CancelAsync().ConfigureAwait(false);
        Task? loop;
        lock (_gate)
        {
            loop = _loop;
            foreach (var state in _types.Values)
            {
                foreach (var resource in state.Resources.Values)
                {
                    resource.StopTimer();
                }
            }
        }

        if (loop is not null)
        {
            try
            {
                await loop.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }

        await _callbacks.DisposeAsync().ConfigureAwait(false);
        _disposed.Dispose();
    }

    private void Unwatch(string typeUrl, string name, IXdsWatcher watcher)
    {
        lock (_gate)
        {
            if (!_types.TryGetValue(typeUrl, out var state) || !state.Resources.TryGetValue(name, out var resource))
            {
                return;
            }

            resource.Watchers.Remove(watcher);
            if (resource.Watchers.Count > 0)
            {
                return;
            }

            resource.StopTimer();
            state.Resources.Remove(name);
            if (name == Wildcard)
            {
                state.Unwatched.Clear();
                state.UnwatchedVersions.Clear();
            }

            QueueSubscriptionChange_NeedsLock(state, name, subscribe: false);
        }
    }

    private Task StartLoop()
    {
        using (ExecutionContext.SuppressFlow())
        {
            return Task.Run(() => RunAsync(_disposed.Token));
        }
    }

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        var backoff = new Backoff(_options.Backoff, _timeProvider, _random);
        var streams = 0;
        var reconnecting = false;
        while (!cancellationToken.IsCancellationRequested)
        {
            if (reconnecting)
            {
                reconnecting = false;
                NotifyReconnect();
            }

            var delta = UsesDelta;
            using var stall = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _timeProvider);
            using var primaryBack = new CancellationTokenSource();
            using var streamCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, stall.Token, primaryBack.Token);
            using var probeCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            _receivedOnStream = false;

            // gRFC A71: while a fallback server serves, keep asking the primary; once it answers, go back to it.
            var probe = _active > 0 ? ProbePrimaryAsync(primaryBack, probeCts.Token) : Task.CompletedTask;
            try
            {
                var headers = ActiveTransport.BuildHeaders();
                var options = new CallOptions(headers, cancellationToken: streamCts.Token);
                streams++;
                Log.StreamOpening(_logger, ActiveTransport.DisplayName, delta ? "delta" : "state-of-the-world", streams);
                using var channel = ActiveTransport.OpenChannel();
                var invoker = channel.CreateCallInvoker();
                if (delta)
                {
                    using var call = invoker.AsyncDuplexStreamingCall(s_deltaMethod, null, options);
                    await RunStreamAsync(call.RequestStream, call.ResponseStream, stall, delta: true, backoff, streamCts.Token).ConfigureAwait(false);
                }
                else
                {
                    using var call = invoker.AsyncDuplexStreamingCall(s_sotwMethod, null, options);
                    await RunStreamAsync(call.RequestStream, call.ResponseStream, stall, delta: false, backoff, streamCts.Token).ConfigureAwait(false);
                }

                throw new XdsClientException($"xDS server '{ActiveTransport.DisplayName}' closed the stream.");
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException ex) when (cancellationToken.IsCancellationRequested && ex.StatusCode == StatusCode.Cancelled)
            {
                return;
            }
            catch (RpcException ex) when (delta && ex.StatusCode == StatusCode.Unimplemented && !primaryBack.IsCancellationRequested)
            {
                Log.DeltaUnsupported(_logger, ActiveTransport.DisplayName);
                Volatile.Write(ref _useDelta, false);
                EndStream();
                continue;
            }
            catch (Exception ex)
            {
                EndStream();
                if (primaryBack.IsCancellationRequested)
                {
                    // The primary answered a probe: leave the fallback at once; the accepted resources stay in force.
                    Log.PrimaryBack(_logger, _transports[0].DisplayName, ActiveTransport.DisplayName);
                    _active = 0;
                    reconnecting = true;
                    continue;
                }

                var stalled = stall.IsCancellationRequested;
                var error = Describe(ex, stalled);
                NotifyAll(error);
                reconnecting = true;
                if (!_receivedOnStream && _active + 1 < _servers.Length)
                {
                    // gRFC A71: the server could not be reached (no response on its stream): try the next one now.
                    Log.FallingBack(_logger, ActiveTransport.DisplayName, _transports[_active + 1].DisplayName, error.Message);
                    _active++;
                    continue;
                }

                // Start over from the primary after the backoff delay.
                _active = 0;
                var wait = backoff.NextDelay();
                Log.StreamFailed(_logger, _transports[0].DisplayName, error.Message, wait.TotalMilliseconds);
                try
                {
                    await Task.Delay(wait, _timeProvider, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            finally
            {
                await probeCts.CancelAsync().ConfigureAwait(false);
                await probe.ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// While a fallback server serves, asks the primary after each backoff delay with a one-request stream for a
    /// resource the client follows; its first answer means it is back, and ends the fallback's stream.
    /// </summary>
    private async Task ProbePrimaryAsync(CancellationTokenSource primaryBack, CancellationToken cancellationToken)
    {
        var backoff = new Backoff(_options.Backoff, _timeProvider, _random);
        try
        {
            while (true)
            {
                await Task.Delay(backoff.NextDelay(), _timeProvider, cancellationToken).ConfigureAwait(false);
                if (await PrimaryAnswersAsync(cancellationToken).ConfigureAwait(false))
                {
                    await primaryBack.CancelAsync().ConfigureAwait(false);
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The fallback's stream ended first.
        }
    }

    private async Task<bool> PrimaryAnswersAsync(CancellationToken cancellationToken)
    {
        (string TypeUrl, string Name)? resource = null;
        lock (_gate)
        {
            foreach (var state in _types.Values)
            {
                foreach (var (name, value) in state.Resources)
                {
                    if (name != Wildcard && (resource is null || value.Value is not null))
                    {
                        resource = (state.TypeUrl, name);
                    }

                    if (resource is not null && value.Value is not null)
                    {
                        break;
                    }
                }
            }
        }

        if (resource is not { } probe)
        {
            return false; // Nothing subscribed yet: nothing to ask the primary for.
        }

        using var timeout = new CancellationTokenSource(_options.ResourceDoesNotExistTimeout, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeout.Token);
        var primary = _transports[0];
        try
        {
            using var channel = primary.OpenChannel();
            var invoker = channel.CreateCallInvoker();
            var options = new CallOptions(primary.BuildHeaders(), cancellationToken: linked.Token);
            if (UsesDelta)
            {
                using var call = invoker.AsyncDuplexStreamingCall(s_deltaMethod, null, options);
                var request = new DeltaDiscoveryRequest { Node = _node, TypeUrl = probe.TypeUrl };
                request.ResourceNamesSubscribe.Add(probe.Name);
                await call.RequestStream.WriteAsync(request).ConfigureAwait(false);
                return await call.ResponseStream.MoveNext(linked.Token).ConfigureAwait(false);
            }
            else
            {
                using var call = invoker.AsyncDuplexStreamingCall(s_sotwMethod, null, options);
                var request = new DiscoveryRequest { Node = _node, TypeUrl = probe.TypeUrl };
                request.ResourceNames.Add(probe.Name);
                await call.RequestStream.WriteAsync(request).ConfigureAwait(false);
                return await call.ResponseStream.MoveNext(linked.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            // Any failure (refused, reset, timed out, or cancelled because the fallback's stream ended) means "not yet".
            if (!cancellationToken.IsCancellationRequested)
            {
                Log.PrimaryStillAway(_logger, primary.DisplayName, _redactor.Redact(ex.Message) ?? string.Empty);
            }

            return false;
        }
    }

    private void NotifyReconnect()
    {
        Action[] listeners;
        lock (_gate)
        {
            listeners = _reconnectListeners;
        }

        foreach (var listener in listeners)
        {
            _callbacks.Schedule(listener);
        }
    }

    /// <summary>Runs one stream until it ends; returns whether any response arrived on it.</summary>
    private async Task<bool> RunStreamAsync<TRequest, TResponse>(
        IClientStreamWriter<TRequest> requests, IAsyncStreamReader<TResponse> responses, CancellationTokenSource stall,
        bool delta, Backoff backoff, CancellationToken cancellationToken)
        where TRequest : class
        where TResponse : class
    {
        var outbox = Channel.CreateUnbounded<object>(new UnboundedChannelOptions { SingleReader = true });
        lock (_gate)
        {
            _outbox = outbox;
            _stall = stall;
            _awaitingResponse = false;
            foreach (var state in _types.Values)
            {
                state.OnNewStream();
                if (state.Resources.Count > 0)
                {
                    outbox.Writer.TryWrite(delta ? BuildInitialDelta_NeedsLock(state) : state.TypeUrl);
                    ArmStall_NeedsLock();
                }
            }
        }

        using var writerCts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var writer = WriteAsync(requests, outbox.Reader, writerCts.Token);
        var received = false;
        try
        {
            while (await responses.MoveNext(cancellationToken).ConfigureAwait(false))
            {
                if (!received)
                {
                    received = true;
                    _receivedOnStream = true;
                    backoff.Reset();
                }

                lock (_gate)
                {
                    _awaitingResponse = false;
                    _stall?.CancelAfter(Timeout.InfiniteTimeSpan);
                }

                if (delta)
                {
                    HandleDelta((DeltaDiscoveryResponse)(object)responses.Current);
                }
                else
                {
                    HandleSotw((DiscoveryResponse)(object)responses.Current);
                }

                if (writer.IsCompleted)
                {
                    await writer.ConfigureAwait(false);
                }
            }
        }
        finally
        {
            outbox.Writer.TryComplete();
            await writerCts.CancelAsync().ConfigureAwait(false);
            try
            {
                await writer.ConfigureAwait(false);
            }
            catch (Exception) when (cancellationToken.IsCancellationRequested || writerCts.IsCancellationRequested)
            {
                // The stream is over; a failed write has nothing more to say.
            }
        }

        return received;
    }

    private async Task WriteAsync<TRequest>(IClientStreamWriter<TRequest> requests, ChannelReader<object> outbox, CancellationToken cancellationToken)
        where TRequest : class
    {
        await foreach (var item in outbox.ReadAllAsync(cancellationToken).ConfigureAwait(false))
        {
            object? message;
            lock (_gate)
            {
                message = item is string typeUrl ? BuildSotwRequest_NeedsLock(typeUrl) : item;
            }

            if (message is not null)
            {
                await requests.WriteAsync((TRequest)message, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    private void EndStream()
    {
        lock (_gate)
        {
            _outbox?.Writer.TryComplete();
            _outbox = null;
            _stall = null;
            _awaitingResponse = false;
            foreach (var state in _types.Values)
            {
                foreach (var resource in state.Resources.Values)
                {
                    // gRFC A27: the does-not-exist timers stop while there is no stream.
                    resource.StopTimer();
                }
            }
        }
    }

    private void QueueSubscriptionChange_NeedsLock(TypeState state, string name, bool subscribe)
    {
        if (_outbox is not { } outbox)
        {
            return;
        }

        if (UsesDelta)
        {
            var request = new DeltaDiscoveryRequest { TypeUrl = state.TypeUrl };
            if (!state.DeltaSentOnStream)
            {
                request.Node = _node;
                state.DeltaSentOnStream = true;
            }

            (subscribe ? request.ResourceNamesSubscribe : request.ResourceNamesUnsubscribe).Add(name);
            if (subscribe)
            {
                StartTimerIfMissing_NeedsLock(state, name);
            }

            outbox.Writer.TryWrite(request);
        }
        else
        {
            outbox.Writer.TryWrite(state.TypeUrl);
        }

        if (subscribe)
        {
            ArmStall_NeedsLock();
        }
    }

    private void ArmStall_NeedsLock()
    {
        if (_options.StallTimeout > TimeSpan.Zero && !_awaitingResponse && _stall is { } stall)
        {
            _awaitingResponse = true;
            stall.CancelAfter(_options.StallTimeout);
        }
    }

    private DeltaDiscoveryRequest BuildInitialDelta_NeedsLock(TypeState state)
    {
        var request = new DeltaDiscoveryRequest { TypeUrl = state.TypeUrl, Node = _node };
        state.DeltaSentOnStream = true;
        foreach (var resource in state.Resources.Values)
        {
            request.ResourceNamesSubscribe.Add(resource.Name);
            if (resource.Name != Wildcard && resource.Version is { } version && resource.Value is not null)
            {
                request.InitialResourceVersions[resource.Name] = version;
            }

            StartTimerIfMissing_NeedsLock(state, resource.Name);
        }

        if (state.Resources.ContainsKey(Wildcard))
        {
            foreach (var (name, version) in state.UnwatchedVersions)
            {
                request.InitialResourceVersions[name] = version;
            }
        }

        return request;
    }

    /// <summary>Builds the current state-of-the-world request of a type (a subscription change, an ACK or a NACK).</summary>
    private DiscoveryRequest? BuildSotwRequest_NeedsLock(string typeUrl)
    {
        if (!_types.TryGetValue(typeUrl, out var state))
        {
            return null;
        }

        var request = new DiscoveryRequest
        {
            TypeUrl = typeUrl,
            VersionInfo = state.AcceptedVersion,
            ResponseNonce = state.Nonce,
        };
        if (!state.SotwSentOnStream)
        {
            // The node goes with the first request of the stream; later requests may omit it.
            request.Node = _node;
            state.SotwSentOnStream = true;
        }

        var wildcard = state.Resources.ContainsKey(Wildcard);
        foreach (var name in state.Resources.Keys)
        {
            if (name != Wildcard)
            {
                request.ResourceNames.Add(name);
                StartTimerIfMissing_NeedsLock(state, name);
            }
        }

        if (wildcard && request.ResourceNames.Count > 0)
        {
            // A wildcard next to named resources must be explicit; alone, the empty list is the wildcard every server knows.
            request.ResourceNames.Add(Wildcard);
        }

        if (state.PendingError is { } error)
        {
            request.ErrorDetail = error;
            state.PendingError = null;
        }

        return request;
    }

    private void StartTimerIfMissing_NeedsLock(TypeState state, string name)
    {
        if (name == Wildcard || !state.Resources.TryGetValue(name, out var resource) || resource.Value is not null || resource.DoesNotExist || resource.Timer is not null)
        {
            return;
        }

        resource.Timer = _timeProvider.CreateTimer(_ => OnDoesNotExistTimer(state.TypeUrl, name, resource), null, _options.ResourceDoesNotExistTimeout, Timeout.InfiniteTimeSpan);
    }

    private void OnDoesNotExistTimer(string typeUrl, string name, ResourceState resource)
    {
        IXdsWatcher[] watchers;
        lock (_gate)
        {
            if (resource.Timer is null || resource.Value is not null || !_types.TryGetValue(typeUrl, out var state) || !state.Resources.TryGetValue(name, out var current) || !ReferenceEquals(current, resource))
            {
                return;
            }

            resource.StopTimer();
            resource.DoesNotExist = true;
            watchers = [.. resource.Watchers];
        }

        Log.DoesNotExistTimeout(_logger, XdsTypeUrls.ShortName(typeUrl), name, _options.ResourceDoesNotExistTimeout.TotalSeconds);
        foreach (var watcher in watchers)
        {
            _callbacks.Schedule(watcher.OnResourceDoesNotExist);
        }
    }

    /// <summary>Handles one state-of-the-world response: decode, validate, apply, notify, queue the ACK or NACK.</summary>
    /// <remarks>Internal (not private) so that the delta versus state-of-the-world measurement can drive it alone.</remarks>
    internal void HandleSotw(DiscoveryResponse response)
    {
        var decoded = new List<(XdsDecodeResult Result, ByteString Bytes)>(response.Resources.Count);
        XdsResourceType? type;
        lock (_gate)
        {
            type = _types.TryGetValue(response.TypeUrl, out var s) ? s.Type : null;
        }

        if (type is null)
        {
            Log.UnknownType(_logger, ActiveTransport.DisplayName, response.TypeUrl);
            return;
        }

        foreach (var any in response.Resources)
        {
            decoded.Add((DecodeOne(type, any), any.Value));
        }

        lock (_gate)
        {
            if (!_types.TryGetValue(response.TypeUrl, out var state))
            {
                return;
            }

            state.Nonce = response.Nonce;
            var errors = new List<string>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            var changed = false;
            foreach (var (result, bytes) in decoded)
            {
                changed |= Apply_NeedsLock(state, result, bytes, version: null, errors);
                if (result.Name is { } name)
                {
                    seen.Add(name);
                }
            }

            if (type.AllResourcesRequiredInSotW)
            {
                foreach (var resource in state.Resources.Values.ToArray())
                {
                    if (resource.Name != Wildcard && resource.Value is not null && !seen.Contains(resource.Name))
                    {
                        changed |= Remove_NeedsLock(state, resource.Name);
                    }
                }

                foreach (var name in state.Unwatched.Keys.Where(n => !seen.Contains(n) && !ActiveServer.IgnoreResourceDeletion).ToArray())
                {
                    state.Unwatched.Remove(name);
                    changed = true;
                }
            }

            if (errors.Count == 0)
            {
                state.AcceptedVersion = response.VersionInfo;
                Log.Acked(_logger, XdsTypeUrls.ShortName(state.TypeUrl), response.VersionInfo, response.Nonce, decoded.Count);
            }
            else
            {
                state.PendingError = new Google.Rpc.Status { Code = (int)StatusCode.InvalidArgument, Message = string.Join("; ", errors) };
                Log.Nacked(_logger, XdsTypeUrls.ShortName(state.TypeUrl), response.VersionInfo, response.Nonce, state.PendingError.Message);
                state.LastNack = new XdsNack(response.VersionInfo, response.Nonce, state.PendingError.Message, _timeProvider.GetUtcNow());
            }

            if (changed)
            {
                NotifyWildcard_NeedsLock(state);
            }

            _outbox?.Writer.TryWrite(state.TypeUrl);
        }
    }

    /// <summary>Handles one incremental response: decode, validate, apply, remove, notify, queue the ACK or NACK.</summary>
    /// <remarks>Internal (not private) so that the delta versus state-of-the-world measurement can drive it alone.</remarks>
    internal void HandleDelta(DeltaDiscoveryResponse response)
    {
        XdsResourceType? type;
        lock (_gate)
        {
            type = _types.TryGetValue(response.TypeUrl, out var s) ? s.Type : null;
        }

        if (type is null)
        {
            Log.UnknownType(_logger, ActiveTransport.DisplayName, response.TypeUrl);
            return;
        }

        var decoded = new List<(XdsDecodeResult Result, ByteString Bytes, string Version)>(response.Resources.Count);
        foreach (var resource in response.Resources)
        {
            if (resource.Resource_ is null)
            {
                // A TTL heartbeat without a body: nothing changes.
                continue;
            }

            var result = DecodeOne(type, resource.Resource_);
            if (result.Name is null && resource.Name.Length > 0)
            {
                result = result with { Name = resource.Name };
            }

            decoded.Add((result, resource.Resource_.Value, resource.Version));
        }

        lock (_gate)
        {
            if (!_types.TryGetValue(response.TypeUrl, out var state))
            {
                return;
            }

            // Kept for diagnostics only: a delta ACK carries the nonce of the response it answers.
            state.Nonce = response.Nonce;
            var errors = new List<string>();
            var changed = false;
            foreach (var (result, bytes, version) in decoded)
            {
                changed |= Apply_NeedsLock(state, result, bytes, version, errors);
            }

            foreach (var name in response.RemovedResources)
            {
                changed |= Remove_NeedsLock(state, name);
                state.Unwatched.Remove(name);
                state.UnwatchedVersions.Remove(name);
            }

            var ack = new DeltaDiscoveryRequest { TypeUrl = state.TypeUrl, ResponseNonce = response.Nonce };
            if (errors.Count == 0)
            {
                Log.Acked(_logger, XdsTypeUrls.ShortName(state.TypeUrl), response.SystemVersionInfo, response.Nonce, decoded.Count);
            }
            else
            {
                ack.ErrorDetail = new Google.Rpc.Status { Code = (int)StatusCode.InvalidArgument, Message = string.Join("; ", errors) };
                Log.Nacked(_logger, XdsTypeUrls.ShortName(state.TypeUrl), response.SystemVersionInfo, response.Nonce, ack.ErrorDetail.Message);
                state.LastNack = new XdsNack(response.SystemVersionInfo, response.Nonce, ack.ErrorDetail.Message, _timeProvider.GetUtcNow());
            }

            if (changed)
            {
                NotifyWildcard_NeedsLock(state);
            }

            _outbox?.Writer.TryWrite(ack);
        }
    }

    private XdsDecodeResult DecodeOne(XdsResourceType type, Any any)
    {
        if (any.TypeUrl != type.TypeUrl)
        {
            return XdsDecodeResult.Invalid(null, $"a resource of type '{any.TypeUrl}' came in a response for '{type.TypeUrl}'");
        }

        try
        {
            return type.Decode(any);
        }
        catch (Exception ex)
        {
            return XdsDecodeResult.Invalid(null, $"a {XdsTypeUrls.ShortName(type.TypeUrl)} resource could not be decoded: {ex.Message}");
        }
    }

    /// <summary>Applies one decoded resource; returns whether the set of accepted resources changed.</summary>
    private bool Apply_NeedsLock(TypeState state, XdsDecodeResult result, ByteString bytes, string? version, List<string> errors)
    {
        if (result.Error is { } error)
        {
            errors.Add(error);
            if (result.Name is { } failedName && state.Resources.TryGetValue(failedName, out var failed))
            {
                var exception = new XdsClientException($"xDS server '{ActiveTransport.DisplayName}' sent an invalid {XdsTypeUrls.ShortName(state.TypeUrl)} resource; the last accepted version stays in force: {_redactor.Redact(error)}");
                foreach (var watcher in failed.Watchers)
                {
                    _callbacks.Schedule(() => watcher.OnError(exception));
                }
            }

            return false;
        }

        var name = result.Name!;
        if (!state.Resources.TryGetValue(name, out var resource))
        {
            // Not asked for by name: kept only under a wildcard subscription (with its delta version for a resume).
            if (!state.Resources.ContainsKey(Wildcard))
            {
                return false;
            }

            if (version is not null)
            {
                state.UnwatchedVersions[name] = version;
            }

            var changedUnwatched = !state.Unwatched.TryGetValue(name, out var previous) || !previous.Bytes.Equals(bytes);
            state.Unwatched[name] = (result.Resource!, bytes);
            return changedUnwatched;
        }

        resource.StopTimer();
        resource.DoesNotExist = false;
        resource.Version = version;
        if (resource.Value is not null && resource.Bytes is not null && resource.Bytes.Equals(bytes))
        {
            return false;
        }

        resource.Value = result.Resource;
        resource.Bytes = bytes;
        var value = result.Resource!;
        foreach (var watcher in resource.Watchers)
        {
            _callbacks.Schedule(() => watcher.OnResourceChanged(value));
        }

        return true;
    }

    private bool Remove_NeedsLock(TypeState state, string name)
    {
        if (!state.Resources.TryGetValue(name, out var resource) || resource.Value is null)
        {
            return false;
        }

        if (ActiveServer.IgnoreResourceDeletion && state.Type.AllResourcesRequiredInSotW)
        {
            Log.DeletionIgnored(_logger, XdsTypeUrls.ShortName(state.TypeUrl), name, ActiveTransport.DisplayName);
            return false;
        }

        Log.Removed(_logger, XdsTypeUrls.ShortName(state.TypeUrl), name, ActiveTransport.DisplayName);
        resource.Value = null;
        resource.Bytes = null;
        resource.Version = null;
        resource.DoesNotExist = true;
        foreach (var watcher in resource.Watchers)
        {
            _callbacks.Schedule(watcher.OnResourceDoesNotExist);
        }

        return true;
    }

    private void NotifyWildcard_NeedsLock(TypeState state)
    {
        if (state.Resources.TryGetValue(Wildcard, out var wildcard))
        {
            var snapshot = state.Snapshot();
            foreach (var watcher in wildcard.Watchers)
            {
                _callbacks.Schedule(() => watcher.OnResourceChanged(snapshot));
            }
        }
    }

    private void NotifyAll(Exception error)
    {
        lock (_gate)
        {
            foreach (var state in _types.Values)
            {
                foreach (var resource in state.Resources.Values)
                {
                    foreach (var watcher in resource.Watchers)
                    {
                        _callbacks.Schedule(() => watcher.OnError(error));
                    }
                }
            }
        }
    }

    private XdsClientException Describe(Exception ex, bool stalled)
    {
        if (stalled)
        {
            return new XdsClientException(
                $"xDS server '{ActiveTransport.DisplayName}' answered nothing for {_options.StallTimeout.TotalSeconds:0.###} s; reconnecting.");
        }

        return ex switch
        {
            XdsClientException client => new XdsClientException(_redactor.Redact(client.Message)!),
            RpcException rpc => new XdsClientException(
                $"The stream to xDS server '{ActiveTransport.DisplayName}' failed: {rpc.StatusCode}: {_redactor.Redact(rpc.Status.Detail)}"),
            _ => new XdsClientException($"The stream to xDS server '{ActiveTransport.DisplayName}' failed: {_redactor.Redact(ex.Message)}"),
        };
    }

    private static Node BuildNode(XdsNodeConfig config)
    {
        var node = new Node
        {
            Id = config.Id,
            Cluster = config.Cluster,
            UserAgentName = "Lodestar",
            UserAgentVersion = typeof(XdsClient).Assembly.GetName().Version?.ToString() ?? "0",
            Locality = new Locality { Region = config.Region, Zone = config.Zone, SubZone = config.SubZone },
        };
        if (config.Metadata is not null)
        {
            node.Metadata = config.Metadata;
        }

        // As gRPC: no overprovisioning factor is applied, and a response may carry the resource in a Resource wrapper.
        node.ClientFeatures.Add("envoy.lb.does_not_support_overprovisioning");
        return node;
    }

    private sealed class TypeState
    {
        public TypeState(XdsResourceType type)
        {
            Type = type;
        }

        public XdsResourceType Type { get; }

        public string TypeUrl => Type.TypeUrl;

        public Dictionary<string, ResourceState> Resources { get; } = new(StringComparer.Ordinal);

        /// <summary>Resources received under a wildcard subscription that no named watcher asked for.</summary>
        public Dictionary<string, (object Value, ByteString Bytes)> Unwatched { get; } = new(StringComparer.Ordinal);

        /// <summary>Delta versions of the resources in <see cref="Unwatched"/>, for <c>initial_resource_versions</c>.</summary>
        public Dictionary<string, string> UnwatchedVersions { get; } = new(StringComparer.Ordinal);

        public string AcceptedVersion { get; set; } = string.Empty;

        public string Nonce { get; set; } = string.Empty;

        public Google.Rpc.Status? PendingError { get; set; }

        /// <summary>Gets or sets the last rejection of this type, kept for diagnostics (<c>lodestar xds dump</c>).</summary>
        public XdsNack? LastNack { get; set; }

        public bool SotwSentOnStream { get; set; }

        public bool DeltaSentOnStream { get; set; }

        public bool HasAnyValue => Unwatched.Count > 0 || Resources.Values.Any(static r => r.Value is not null);

        public void OnNewStream()
        {
            // A new stream starts without a nonce; the accepted version is kept so the server can skip unchanged state.
            Nonce = string.Empty;
            PendingError = null;
            SotwSentOnStream = false;
            DeltaSentOnStream = false;
        }

        public XdsResourceSet Snapshot()
        {
            var all = new Dictionary<string, object>(StringComparer.Ordinal);
            foreach (var (name, entry) in Unwatched)
            {
                all[name] = entry.Value;
            }

            foreach (var resource in Resources.Values)
            {
                if (resource.Value is { } value)
                {
                    all[resource.Name] = value;
                }
            }

            return new XdsResourceSet(TypeUrl, all);
        }
    }

    private sealed class ResourceState
    {
        public ResourceState(string name)
        {
            Name = name;
        }

        public string Name { get; }

        public List<IXdsWatcher> Watchers { get; } = [];

        public object? Value { get; set; }

        public ByteString? Bytes { get; set; }

        public string? Version { get; set; }

        public bool DoesNotExist { get; set; }

        public ITimer? Timer { get; set; }

        public void StopTimer()
        {
            Timer?.Dispose();
            Timer = null;
        }
    }

    private sealed class WatchHandle(XdsClient client, string typeUrl, string name, IXdsWatcher watcher) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                client.Unwatch(typeUrl, name, watcher);
            }
        }
    }

    private sealed class ReconnectSubscription(XdsClient client, Action callback) : IDisposable
    {
        private int _disposed;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) != 0)
            {
                return;
            }

            lock (client._gate)
            {
                var index = Array.IndexOf(client._reconnectListeners, callback);
                if (index >= 0)
                {
                    client._reconnectListeners = [.. client._reconnectListeners.Where((_, i) => i != index)];
                }
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Debug, "Opening {Mode} ADS stream {Stream} to xDS server {Server}.", EventName = "XdsStreamOpening")]
        public static partial void StreamOpening(ILogger logger, string server, string mode, int stream);

        [LoggerMessage(2, LogLevel.Warning, "The ADS stream failed: {Reason} Reconnecting in {DelayMs:0} ms. ({Server})", EventName = "XdsStreamFailed")]
        public static partial void StreamFailed(ILogger logger, string server, string reason, double delayMs);

        [LoggerMessage(3, LogLevel.Debug, "ACK {Type} version '{Version}' nonce '{Nonce}' ({Count} resources).", EventName = "XdsAck")]
        public static partial void Acked(ILogger logger, string type, string version, string nonce, int count);

        [LoggerMessage(4, LogLevel.Warning, "NACK {Type} version '{Version}' nonce '{Nonce}': {Errors}", EventName = "XdsNack")]
        public static partial void Nacked(ILogger logger, string type, string version, string nonce, string errors);

        [LoggerMessage(5, LogLevel.Information, "{Type} resource '{Name}' was removed by xDS server {Server}.", EventName = "XdsResourceRemoved")]
        public static partial void Removed(ILogger logger, string type, string name, string server);

        [LoggerMessage(6, LogLevel.Warning, "{Type} resource '{Name}' is missing from a response of xDS server {Server}; kept, as the server has ignore_resource_deletion.", EventName = "XdsDeletionIgnored")]
        public static partial void DeletionIgnored(ILogger logger, string type, string name, string server);

        [LoggerMessage(7, LogLevel.Warning, "{Type} resource '{Name}' did not arrive within {Seconds:0.###} s; it does not exist.", EventName = "XdsResourceDoesNotExist")]
        public static partial void DoesNotExistTimeout(ILogger logger, string type, string name, double seconds);

        [LoggerMessage(8, LogLevel.Information, "xDS server {Server} does not offer incremental xDS; using state of the world.", EventName = "XdsDeltaUnsupported")]
        public static partial void DeltaUnsupported(ILogger logger, string server);

        [LoggerMessage(30, LogLevel.Warning, "xDS server {Server} cannot be reached ({Reason}); falling back to xDS server {Fallback}.", EventName = "XdsFallingBack")]
        public static partial void FallingBack(ILogger logger, string server, string fallback, string reason);

        [LoggerMessage(31, LogLevel.Information, "The primary xDS server {Primary} answers again; leaving the fallback {Fallback}.", EventName = "XdsPrimaryBack")]
        public static partial void PrimaryBack(ILogger logger, string primary, string fallback);

        [LoggerMessage(32, LogLevel.Debug, "The primary xDS server {Primary} is still away: {Reason}", EventName = "XdsPrimaryStillAway")]
        public static partial void PrimaryStillAway(ILogger logger, string primary, string reason);

        [LoggerMessage(9, LogLevel.Debug, "xDS server {Server} sent a response for type '{TypeUrl}', which is not subscribed; ignored.", EventName = "XdsUnknownType")]
        public static partial void UnknownType(ILogger logger, string server, string typeUrl);
    }
}
