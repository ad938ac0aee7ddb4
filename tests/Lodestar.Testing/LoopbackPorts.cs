using System.Net;
using System.Net.Sockets;

namespace Lodestar.Testing;

/// <summary>Free TCP ports on 127.0.0.1, for servers the tests start and for addresses where nothing listens.</summary>
public static class LoopbackPorts
{
    /// <summary>Returns <paramref name="count"/> distinct loopback ports that were free a moment ago (all held open together while chosen).</summary>
    public static int[] Free(int count)
    {
        var listeners = new List<TcpListener>();
        try
        {
            for (var i = 0; i < count; i++)
            {
                var listener = new TcpListener(IPAddress.Loopback, 0);
                listeners.Add(listener);
                listener.Start();
            }

            return [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        }
        finally
        {
            foreach (var listener in listeners)
            {
                listener.Dispose();
            }
        }
    }
}
