using System.Collections.Concurrent;
using System.Globalization;
using System.Net.Sockets;
using Lodestar.Endpoints;
using Lodestar.LoadBalancing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Http.Internal;

/// <summary>
/// Closes idle pooled connections to addresses that left every service's endpoint set, instead of leaving them to
/// <see cref="SocketsHttpHandler.PooledConnectionIdleTimeout"/> or <see cref="SocketsHttpHandler.PooledConnectionLifetime"/>.
/// </summary>
/// <remarks>
/// <para>
/// Membership: every endpoint watcher reports each change of its set (<see cref="OnSetChanged"/>). An address is
/// counted once per set that holds it, so an address that leaves one service but still serves another is left alone.
/// </para>
/// <para>
/// Connections: this is the <see cref="SocketsHttpHandler.ConnectCallback"/> of Lodestar clients. Every connection it
/// opens is wrapped in a <see cref="TrackedStream"/> and indexed by its <c>host:port</c>, which is the endpoint's address
/// because the handler rewrites each request to the picked endpoint. New requests already avoid a removed address (the
/// balancer no longer picks it); this class deals with the sockets left in the pool.
/// </para>
/// <para>
/// SocketsHttpHandler has no API to drop one pool, so a retired connection closes its own socket once no request to its
/// address awaits response headers, it has moved no bytes for <see cref="LodestarOptions.RetireQuietPeriod"/> and no
/// write is in progress; the pool then sees the connection closed and discards it. Requests in flight finish first.
/// </para>
/// <para>
/// Requests awaiting headers are read from the <see cref="EndpointState"/> records of the address (every health stage
/// that holds it reports its states through <see cref="Track"/>): the request path keeps no count of its own here. A
/// state that left its stage stays known while requests to it are in flight, and is forgotten once they are done.
/// </para>
/// <para>
/// Per-service connection settings (<see cref="ConnectionOptions"/>) apply here too: the services of a connection are
/// those whose sets hold its address (kept from <see cref="OnSetChanged"/>). The shortest of their connect timeouts
/// bounds the connect, and each handler's callback (<see cref="CreateConnectCallback"/>) counts its open connections
/// per service against their <see cref="ConnectionOptions.MaxConnections"/>.
/// </para>
/// </remarks>
internal sealed partial class ConnectionRetirer
{
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<TrackedStream, byte>> _connections = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, byte> _retired = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, EndpointState[]> _states = new(StringComparer.OrdinalIgnoreCase);
    private readonly Lock _statesGate = new();
    private readonly Dictionary<string, int> _members = new(StringComparer.OrdinalIgnoreCase);
    private readonly Dictionary<string, Dictionary<string, int>> _memberServices = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, string[]> _services = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<TrackedStream, ConnectionLimits.Lease> _leases = new();
    private readonly Lock _membersGate = new();
    private readonly TimeProvider _timeProvider;
    private readonly IOptionsMonitor<LodestarOptions> _options;
    private readonly IOptionsMonitor<ConnectionOptions>? _connectionOptions;
    private readonly ILogger _logger;

    public ConnectionRetirer(TimeProvider timeProvider, IOptionsMonitor<LodestarOptions> options, ILogger<ConnectionRetirer> logger,
        IOptionsMonitor<ConnectionOptions>? connectionOptions = null)
    {
        _timeProvider = timeProvider;
        _options = options;
        _logger = logger;
        _connectionOptions = connectionOptions;
    }

    internal TimeProvider TimeProvider => _timeProvider;

    internal TimeSpan QuietPeriod => _options.CurrentValue.RetireQuietPeriod;

    /// <summary>
    /// Connects as SocketsHttpHandler does by default, within the services' connect timeout, and tracks the connection
    /// by its address. Applies no connection cap: that needs a callback per handler (<see cref="CreateConnectCallback"/>).
    /// </summary>
    public ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
        => ConnectAsync(null, context, cancellationToken);

    /// <summary>
    /// Creates the <see cref="SocketsHttpHandler.ConnectCallback"/> of one handler: as <see cref="ConnectAsync(SocketsHttpConnectionContext, CancellationToken)"/>,
    /// and it also caps the handler's open connections per service (<see cref="ConnectionOptions.MaxConnections"/>),
    /// since a connection pool belongs to its handler.
    /// </summary>
    public Func<SocketsHttpConnectionContext, CancellationToken, ValueTask<Stream>> CreateConnectCallback()
    {
        var limits = new ConnectionLimits();
        return (context, cancellationToken) => ConnectAsync(limits, context, cancellationToken);
    }

    /// <summary>Gets the services whose sets hold <paramref name="address"/> (tests).</summary>
    internal IReadOnlyList<string> ServicesOf(string address) => _services.GetValueOrDefault(address) ?? [];

    internal async ValueTask<Stream> ConnectAsync(ConnectionLimits? limits, SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var address = DiscoveredEndpoint.FormatAddress(context.DnsEndPoint.Host, context.DnsEndPoint.Port);
        TimeSpan? timeout = null;
        string? timeoutService = null;
        List<(string Service, int Max)>? caps = null;
        if (_connectionOptions is not null && _services.TryGetValue(address, out var services))
        {
            foreach (var service in services)
            {
                var options = _connectionOptions.Get(service);
                if (options.ConnectTimeout is { } connectTimeout && (timeout is null || connectTimeout < timeout))
                {
                    timeout = connectTimeout;
                    timeoutService = service;
                }

                if (limits is not null && options.MaxConnections is { } max)
                {
                    (caps ??= []).Add((service, max));
                }
            }
        }

        if (timeout is null && caps is null)
        {
            return TrackConnection(address, await ConnectSocketAsync(context.DnsEndPoint, cancellationToken).ConfigureAwait(false), null);
        }

        using var timer = timeout is { } due ? new CancellationTokenSource(due, _timeProvider) : null;
        using var linked = timer is null ? null : CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timer.Token);
        var token = linked?.Token ?? cancellationToken;
        ConnectionLimits.Lease? lease = null;
        try
        {
            if (caps is not null)
            {
                lease = await limits!.AcquireAsync(caps, token).ConfigureAwait(false);
            }

            var socket = await ConnectSocketAsync(context.DnsEndPoint, token).ConfigureAwait(false);
            return TrackConnection(address, socket, lease);
        }
        catch (OperationCanceledException) when (timer is not null && timer.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            lease?.Release();

            // Not a cancellation of the handler's: SocketsHttpHandler reports it as a connection error (a connect failure).
            var full = lease is null && caps is not null ? limits!.FirstFull(caps) : null;
            var milliseconds = timeout!.Value.TotalMilliseconds;
            throw new TimeoutException(full is { } cap
                ? string.Create(CultureInfo.InvariantCulture,
                    $"This client already has {cap.Max} connection(s) open to service '{cap.Service}', its most, and none closed within the connect timeout of {milliseconds:0.###} ms (service '{timeoutService}').")
                : string.Create(CultureInfo.InvariantCulture,
                    $"Connecting to {address} timed out after {milliseconds:0.###} ms (the connect timeout of service '{timeoutService}')."));
        }
        catch
        {
            lease?.Release();
            throw;
        }
    }

    private static async ValueTask<Socket> ConnectSocketAsync(System.Net.DnsEndPoint endPoint, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(endPoint, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private TrackedStream TrackConnection(string address, Socket socket, ConnectionLimits.Lease? lease)
    {
        var stream = new TrackedStream(new NetworkStream(socket, ownsSocket: true), this, address);
        if (lease is not null)
        {
            _leases[stream] = lease;
        }

        _connections.GetOrAdd(address, static _ => new ConcurrentDictionary<TrackedStream, byte>()).TryAdd(stream, 0);
        if (_retired.ContainsKey(address))
        {
            // Opened for a request picked just before the address left: close it once that request is done.
            stream.Retire();
        }

        return stream;
    }

    /// <summary>
    /// Records that a watcher's set changed from <paramref name="previous"/> to <paramref name="current"/>: addresses no
    /// set holds any more are retired, addresses that came back are restored.
    /// </summary>
    public void OnSetChanged(EndpointSet? previous, EndpointSet current)
    {
        List<string>? retire = null;
        List<string>? restore = null;
        lock (_membersGate)
        {
            var before = Addresses(previous);
            var after = Addresses(current);
            foreach (var address in after)
            {
                if (!before.Contains(address))
                {
                    AddService_NeedsLock(address, current.ServiceName);
                    var count = _members.GetValueOrDefault(address) + 1;
                    _members[address] = count;
                    if (count == 1 && _retired.ContainsKey(address))
                    {
                        (restore ??= []).Add(address);
                    }
                }
            }

            foreach (var address in before)
            {
                if (!after.Contains(address))
                {
                    RemoveService_NeedsLock(address, previous!.ServiceName);
                    var count = _members.GetValueOrDefault(address) - 1;
                    if (count <= 0)
                    {
                        _members.Remove(address);
                        (retire ??= []).Add(address);
                    }
                    else
                    {
                        _members[address] = count;
                    }
                }
            }

            // Inside the gate, so a retire and a restore of the same address cannot overtake each other.
            if (restore is not null)
            {
                Restore(restore);
            }

            if (retire is not null)
            {
                Log.AddressesLeft(_logger, string.Join(", ", retire));
                Retire(retire);
            }
        }
    }

    /// <summary>
    /// Records endpoint states a health stage created (<paramref name="added"/>) and states that left it
    /// (<paramref name="removed"/>); a removed state is kept while requests to it are in flight.
    /// </summary>
    public void Track(IReadOnlyList<EndpointState>? added, IReadOnlyList<EndpointState>? removed)
    {
        lock (_statesGate)
        {
            if (added is not null)
            {
                foreach (var state in added)
                {
                    var address = state.Endpoint.Address;
                    _states[address] = [.. Prune(_states.GetValueOrDefault(address)), state];
                }
            }

            if (removed is not null)
            {
                foreach (var state in removed)
                {
                    // Departed is set by the stage; pruning drops the state now unless a request to it is in flight.
                    SetPruned_NeedsLock(state.Endpoint.Address);
                }
            }
        }
    }

    /// <summary>
    /// Keeps a state that left its stage known again: an attempt picked it from an older picker just as it left.
    /// The caller checks <see cref="EndpointState.Departed"/> after counting the attempt in flight, and
    /// <see cref="Track"/> reads the in-flight count after the stage marked it departed (under a lock, a full fence),
    /// so either the pruning sees the attempt or the attempt sees the departure.
    /// </summary>
    public void Revive(EndpointState state)
    {
        lock (_statesGate)
        {
            var address = state.Endpoint.Address;
            var states = _states.GetValueOrDefault(address) ?? [];
            if (Array.IndexOf(states, state) < 0)
            {
                _states[address] = [.. states, state];
            }
        }
    }

    /// <summary>Gets whether any request to <paramref name="address"/> still waits for response headers.</summary>
    internal bool IsAwaitingResponse(string address)
    {
        if (!_states.TryGetValue(address, out var states))
        {
            return false;
        }

        var awaiting = false;
        var departedIdle = false;
        foreach (var state in states)
        {
            if (state.InFlight > 0)
            {
                awaiting = true;
            }
            else if (state.Departed)
            {
                departedIdle = true;
            }
        }

        if (departedIdle)
        {
            lock (_statesGate)
            {
                SetPruned_NeedsLock(address);
            }
        }

        return awaiting;
    }

    /// <summary>Gets how many endpoint states are known for <paramref name="address"/> (tests).</summary>
    internal int CountStates(string address) => _states.TryGetValue(address, out var states) ? states.Length : 0;

    /// <summary>Gets how many tracked connections to <paramref name="address"/> are open.</summary>
    internal int CountOpen(string address) => _connections.TryGetValue(address, out var streams) ? streams.Count : 0;

    /// <summary>Gets whether <paramref name="address"/> is retired now.</summary>
    internal bool IsRetired(string address) => _retired.ContainsKey(address);

    internal void OnClosed(TrackedStream stream, bool retired)
    {
        if (_leases.TryRemove(stream, out var lease))
        {
            lease.Release();
        }

        if (_connections.TryGetValue(stream.Address, out var streams))
        {
            streams.TryRemove(stream, out _);
        }

        if (retired)
        {
            Log.ConnectionRetired(_logger, stream.Address);
        }
    }

    internal void OnRetireCheckFailed(string address, Exception error) => Log.RetireCheckFailed(_logger, address, error);

    private void SetPruned_NeedsLock(string address)
    {
        var pruned = Prune(_states.GetValueOrDefault(address));
        if (pruned.Length == 0)
        {
            _states.TryRemove(address, out _);
        }
        else
        {
            _states[address] = pruned;
        }
    }

    private void AddService_NeedsLock(string address, string service)
    {
        if (!_memberServices.TryGetValue(address, out var services))
        {
            _memberServices[address] = services = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        }

        services[service] = services.GetValueOrDefault(service) + 1;
        _services[address] = [.. services.Keys];
    }

    private void RemoveService_NeedsLock(string address, string service)
    {
        if (!_memberServices.TryGetValue(address, out var services))
        {
            return;
        }

        var count = services.GetValueOrDefault(service) - 1;
        if (count > 0)
        {
            services[service] = count;
            return;
        }

        services.Remove(service);
        if (services.Count == 0)
        {
            _memberServices.Remove(address);
            _services.TryRemove(address, out _);
        }
        else
        {
            _services[address] = [.. services.Keys];
        }
    }

    private static EndpointState[] Prune(EndpointState[]? states)
        => states is null ? [] : Array.FindAll(states, static s => !s.Departed || s.InFlight > 0);

    private static HashSet<string> Addresses(EndpointSet? set)
    {
        var addresses = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        if (set is not null)
        {
            foreach (var endpoint in set.Endpoints)
            {
                addresses.Add(endpoint.Address);
            }
        }

        return addresses;
    }

    private void Retire(List<string> addresses)
    {
        foreach (var address in addresses)
        {
            _retired[address] = 0;
            if (_connections.TryGetValue(address, out var streams))
            {
                foreach (var stream in streams.Keys)
                {
                    stream.Retire();
                }
            }
        }
    }

    private void Restore(List<string> addresses)
    {
        foreach (var address in addresses)
        {
            if (_retired.TryRemove(address, out _) && _connections.TryGetValue(address, out var streams))
            {
                foreach (var stream in streams.Keys)
                {
                    stream.CancelRetirement();
                }
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(60, LogLevel.Debug, "Addresses left every service's set: {Addresses}; their pooled connections close once idle.", EventName = "AddressesRetired")]
        public static partial void AddressesLeft(ILogger logger, string addresses);

        [LoggerMessage(61, LogLevel.Debug, "Closed an idle pooled connection to {Address}, which left its service's set.", EventName = "ConnectionRetired")]
        public static partial void ConnectionRetired(ILogger logger, string address);

        [LoggerMessage(62, LogLevel.Warning, "Checking a retired connection to {Address} failed.", EventName = "RetireCheckFailed")]
        public static partial void RetireCheckFailed(ILogger logger, string address, Exception error);
    }
}
