using System.Collections.Concurrent;
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
/// </remarks>
internal sealed partial class ConnectionRetirer
{
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<TrackedStream, byte>> _connections = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, byte> _retired = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, EndpointState[]> _states = new(StringComparer.OrdinalIgnoreCase);
    private readonly Lock _statesGate = new();
    private readonly Dictionary<string, int> _members = new(StringComparer.OrdinalIgnoreCase);
    private readonly Lock _membersGate = new();
    private readonly TimeProvider _timeProvider;
    private readonly IOptionsMonitor<LodestarOptions> _options;
    private readonly ILogger _logger;

    public ConnectionRetirer(TimeProvider timeProvider, IOptionsMonitor<LodestarOptions> options, ILogger<ConnectionRetirer> logger)
    {
        _timeProvider = timeProvider;
        _options = options;
        _logger = logger;
    }

    internal TimeProvider TimeProvider => _timeProvider;

    internal TimeSpan QuietPeriod => _options.CurrentValue.RetireQuietPeriod;

    /// <summary>Connects as SocketsHttpHandler does by default, and tracks the connection by its address.</summary>
    public async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var address = DiscoveredEndpoint.FormatAddress(context.DnsEndPoint.Host, context.DnsEndPoint.Port);
        var stream = new TrackedStream(new NetworkStream(socket, ownsSocket: true), this, address);
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
