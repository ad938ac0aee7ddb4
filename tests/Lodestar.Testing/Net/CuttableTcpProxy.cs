using System.Net;
using System.Net.Sockets;

namespace Lodestar.Testing.Net;

/// <summary>
/// A TCP proxy on a free 127.0.0.1 port in front of one loopback server, which a test can tell to cut every connection
/// at once (as a crashed middlebox or a dropped NAT entry would), or to stall: stop forwarding in both directions while
/// every socket stays open (as a hung peer or a black-holed route would), until it resumes or cuts.
/// </summary>
/// <remarks>
/// Connections made while the proxy is stalled are accepted, and stall too. A cut resets the sockets (RST), so the
/// client sees the connection fail at once rather than end cleanly; bytes held back by a stall are dropped with them.
/// </remarks>
public sealed class CuttableTcpProxy : IAsyncDisposable
{
    private readonly TcpListener _listener;
    private readonly IPEndPoint _target;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _gate = new();
    private readonly List<Link> _links = [];
    private readonly Task _accepting;
    private TaskCompletionSource _flowing = NewGate(open: true);
    private int _accepted;
    private int _cuts;

    private CuttableTcpProxy(IPEndPoint target)
    {
        _target = target;
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        _accepting = AcceptLoopAsync();
    }

    /// <summary>Gets the port the proxy listens on.</summary>
    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Gets the proxy's URL for <paramref name="scheme"/>: <c>http://127.0.0.1:{port}</c> by default.</summary>
    /// <param name="scheme">The scheme to put in front.</param>
    /// <returns>The URL.</returns>
    public string Url(string scheme = "http") => $"{scheme}://127.0.0.1:{Port}";

    /// <summary>Gets the number of client connections accepted so far.</summary>
    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>Gets the number of connections open now.</summary>
    public int Open
    {
        get
        {
            lock (_gate)
            {
                return _links.Count;
            }
        }
    }

    /// <summary>Gets the number of connections cut by <see cref="CutAll"/> so far.</summary>
    public int Cuts => Volatile.Read(ref _cuts);

    /// <summary>Gets whether forwarding is stalled.</summary>
    public bool IsStalled => !_flowing.Task.IsCompleted;

    /// <summary>Starts a proxy in front of <paramref name="targetPort"/> on 127.0.0.1.</summary>
    /// <param name="targetPort">The port of the server behind the proxy.</param>
    /// <returns>The running proxy.</returns>
    public static CuttableTcpProxy Start(int targetPort) => new(new IPEndPoint(IPAddress.Loopback, targetPort));

    /// <summary>Starts a proxy in front of the server at <paramref name="url"/>, which must be on a loopback address.</summary>
    /// <param name="url">The server's URL, for example an etcd client URL.</param>
    /// <returns>The running proxy.</returns>
    public static CuttableTcpProxy Start(string url)
    {
        var uri = new Uri(url);
        if (!IPAddress.TryParse(uri.Host, out var address) || !IPAddress.IsLoopback(address))
        {
            throw new ArgumentException($"The proxy forwards only to loopback addresses, not '{uri.Host}'.", nameof(url));
        }

        return new CuttableTcpProxy(new IPEndPoint(address, uri.Port));
    }

    /// <summary>Stops forwarding in both directions; sockets stay open and new connections are accepted but stall too.</summary>
    public void Stall()
    {
        lock (_gate)
        {
            if (_flowing.Task.IsCompleted)
            {
                _flowing = NewGate(open: false);
            }
        }
    }

    /// <summary>Forwards again, on every open connection, whatever was held back.</summary>
    public void Resume()
    {
        lock (_gate)
        {
            _flowing.TrySetResult();
        }
    }

    /// <summary>
    /// Resets every open connection at once, dropping whatever a stall held back, and forwards again for the
    /// connections that come after (a stall ends with the cut).
    /// </summary>
    /// <returns>The number of connections cut.</returns>
    public int CutAll()
    {
        Link[] links;
        lock (_gate)
        {
            links = [.. _links];
            _links.Clear();
        }

        // Cut outside the lock (cancellation runs the pumps' continuations), and before forwarding resumes, so that a
        // byte a stall held back cannot slip through in between.
        foreach (var link in links)
        {
            link.Cut();
        }

        Resume();
        Interlocked.Add(ref _cuts, links.Length);
        return links.Length;
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Stop();
        CutAll();
        try
        {
            await _accepting;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stopping.Dispose();
    }

    private static TaskCompletionSource NewGate(bool open)
    {
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        if (open)
        {
            gate.SetResult();
        }

        return gate;
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stopping.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            Interlocked.Increment(ref _accepted);
            _ = Task.Run(() => ServeAsync(client));
        }
    }

    private async Task ServeAsync(Socket client)
    {
        var link = new Link(client);
        lock (_gate)
        {
            _links.Add(link);
        }

        try
        {
            using var connectTimeout = CancellationTokenSource.CreateLinkedTokenSource(link.Token);
            connectTimeout.CancelAfter(TimeSpan.FromSeconds(10));
            await link.Server.ConnectAsync(_target, connectTimeout.Token);
            await Task.WhenAll(PumpAsync(link, link.Client, link.Server), PumpAsync(link, link.Server, link.Client));
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException or IOException)
        {
        }
        finally
        {
            lock (_gate)
            {
                _links.Remove(link);
            }

            link.Dispose();
        }
    }

    private async Task PumpAsync(Link link, Socket from, Socket to)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                await WaitFlowingAsync(link.Token);
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, link.Token);
                if (read == 0)
                {
                    // One side closed its sending half: pass the end on, keep the other direction going.
                    to.Shutdown(SocketShutdown.Send);
                    return;
                }

                await WaitFlowingAsync(link.Token);
                var sent = 0;
                while (sent < read)
                {
                    sent += await to.SendAsync(buffer.AsMemory(sent, read - sent), SocketFlags.None, link.Token);
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Either side reset, or the link was cut: take the other side down too.
            link.Cut();
        }
    }

    private Task WaitFlowingAsync(CancellationToken cancellationToken)
    {
        Task gate;
        lock (_gate)
        {
            gate = _flowing.Task;
        }

        return gate.IsCompleted ? Task.CompletedTask : gate.WaitAsync(cancellationToken);
    }

    /// <summary>One proxied connection: the accepted client socket and the socket to the server.</summary>
    private sealed class Link(Socket client) : IDisposable
    {
        private readonly CancellationTokenSource _cut = new();
        private int _disposed;

        public Socket Client { get; } = client;

        public Socket Server { get; } = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

        public CancellationToken Token => _cut.Token;

        /// <summary>Resets both sockets (linger 0: RST, not FIN) and stops both pumps.</summary>
        public void Cut()
        {
            if (Volatile.Read(ref _disposed) != 0)
            {
                return;
            }

            try
            {
                _cut.Cancel();
            }
            catch (ObjectDisposedException)
            {
                return;
            }

            Reset(Client);
            Reset(Server);
        }

        public void Dispose()
        {
            Cut();
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                Client.Dispose();
                Server.Dispose();
                _cut.Dispose();
            }
        }

        private static void Reset(Socket socket)
        {
            try
            {
                socket.LingerState = new LingerOption(true, 0);
                socket.Close();
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
            }
        }
    }
}
