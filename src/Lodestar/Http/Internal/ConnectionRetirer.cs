using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Lodestar.Endpoints;
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
/// </remarks>
internal sealed partial class ConnectionRetirer
{
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<TrackedStream, byte>> _connections = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, byte> _retired = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, StrongBox<int>> _awaiting = new(StringComparer.OrdinalIgnoreCase);
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

    /// <summary>Marks that a request to <paramref name="address"/> is waiting for its response headers.</summary>
    /// <returns>The counter to pass to <see cref="ResponseArrived"/>.</returns>
    public StrongBox<int> AwaitResponse(string address)
    {
        var counter = _awaiting.GetOrAdd(address, static _ => new StrongBox<int>());
        Interlocked.Increment(ref counter.Value);
        return counter;
    }

    /// <summary>Marks that a request counted by <see cref="AwaitResponse"/> got its response headers or failed.</summary>
    public static void ResponseArrived(StrongBox<int> counter) => Interlocked.Decrement(ref counter.Value);

    /// <summary>Gets whether any request to <paramref name="address"/> still waits for response headers.</summary>
    internal bool IsAwaitingResponse(string address)
        => _awaiting.TryGetValue(address, out var counter) && Volatile.Read(ref counter.Value) > 0;

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
