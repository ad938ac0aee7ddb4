using System.Collections.Concurrent;
using System.Net.Sockets;
using Lodestar.Endpoints;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Lodestar.Dns.Http.Internal;

/// <summary>
/// Closes idle pooled connections to addresses that left a DNS service's set, instead of leaving them to
/// <see cref="SocketsHttpHandler.PooledConnectionIdleTimeout"/> or <see cref="SocketsHttpHandler.PooledConnectionLifetime"/>.
/// </summary>
/// <remarks>
/// <para>
/// It is the <see cref="SocketsHttpHandler.ConnectCallback"/> of the clients it serves: every connection it opens is
/// wrapped in a <see cref="TrackedStream"/> and indexed by its <c>host:port</c>, which for Lodestar clients is the
/// endpoint's address because the handler rewrites each request to the picked endpoint. New requests already avoid a
/// removed address (the balancer no longer picks it); this class deals with the sockets left in the pool.
/// </para>
/// <para>
/// SocketsHttpHandler has no API to drop one pool, so a retired connection closes its own socket once it has moved no
/// bytes for <see cref="DnsSourceOptions.RetireQuietPeriod"/> and has no write in progress; the pool then sees the
/// connection closed and discards it. A connection still busy (a response streaming) is left to finish.
/// </para>
/// </remarks>
internal sealed partial class ConnectionRetirer
{
    private readonly ConcurrentDictionary<string, ConcurrentDictionary<TrackedStream, byte>> _connections = new(StringComparer.OrdinalIgnoreCase);
    private readonly ConcurrentDictionary<string, byte> _retired = new(StringComparer.OrdinalIgnoreCase);
    private readonly TimeProvider _timeProvider;
    private readonly IOptionsMonitor<DnsSourceOptions> _options;
    private readonly ILogger _logger;

    public ConnectionRetirer(TimeProvider timeProvider, IOptionsMonitor<DnsSourceOptions> options, ILogger<ConnectionRetirer> logger)
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

        var address = ServiceEndpoint.FormatAddress(context.DnsEndPoint.Host, context.DnsEndPoint.Port);
        var stream = new TrackedStream(new NetworkStream(socket, ownsSocket: true), this, address);
        _connections.GetOrAdd(address, static _ => new ConcurrentDictionary<TrackedStream, byte>()).TryAdd(stream, 0);
        if (_retired.ContainsKey(address))
        {
            // Opened for a request picked just before the address left: close it once that request is done.
            stream.Retire();
        }

        return stream;
    }

    /// <summary>Marks addresses as gone: their connections close as soon as they are idle.</summary>
    public void Retire(IEnumerable<string> addresses)
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

    /// <summary>Marks addresses as back: their connections that are not closed yet stay open.</summary>
    public void Restore(IEnumerable<string> addresses)
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

    /// <summary>Gets how many tracked connections to <paramref name="address"/> are open.</summary>
    internal int CountOpen(string address) => _connections.TryGetValue(address, out var streams) ? streams.Count : 0;

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

    private static partial class Log
    {
        [LoggerMessage(20, LogLevel.Debug, "Closed an idle pooled connection to {Address}, which left its service's DNS set.", EventName = "DnsConnectionRetired")]
        public static partial void ConnectionRetired(ILogger logger, string address);

        [LoggerMessage(21, LogLevel.Warning, "Checking a retired connection to {Address} failed.", EventName = "DnsRetireCheckFailed")]
        public static partial void RetireCheckFailed(ILogger logger, string address, Exception error);
    }
}
