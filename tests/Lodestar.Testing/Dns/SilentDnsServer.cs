using System.Net;
using System.Net.Sockets;

namespace Lodestar.Testing.Dns;

/// <summary>A UDP socket on 127.0.0.1 that receives queries and never answers: a name server that is down.</summary>
public sealed class SilentDnsServer : IDisposable
{
    private readonly Socket _socket;

    /// <summary>Binds to a free loopback port.</summary>
    public SilentDnsServer()
    {
        _socket = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        _socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
    }

    /// <summary>Gets the bound endpoint.</summary>
    public IPEndPoint EndPoint => (IPEndPoint)_socket.LocalEndPoint!;

    /// <summary>Gets the server as <c>127.0.0.1:port</c>.</summary>
    public string Server => EndPoint.ToString();

    /// <summary>Gets whether a query has arrived (it stays unread).</summary>
    public bool WasAsked => _socket.Available > 0;

    /// <inheritdoc/>
    public void Dispose() => _socket.Dispose();
}
