using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Lodestar.Testing.Consul;

/// <summary>
/// A loopback TCP server that reads each HTTP/1.1 request's head and answers with raw bytes the test scripts from the
/// request's <c>X-Consul-Token</c>, then closes the connection: for answers no well-behaved server (Kestrel) would send,
/// such as a malformed header line that quotes the token.
/// </summary>
public sealed class RawHttpResponder : IAsyncDisposable
{
    private const int MaxHeadBytes = 64 * 1024;

    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly Func<string, string> _respond;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Task _accepting;
    private int _requests;

    private RawHttpResponder(Func<string, string> respond)
    {
        _respond = respond;
        _listener.Start();
        _accepting = Task.Run(() => AcceptAsync(_stopping.Token));
    }

    /// <summary>Gets the base URL, <c>http://127.0.0.1:port</c>.</summary>
    public string Address => $"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    /// <summary>Gets how many requests were answered.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>Starts a responder; <paramref name="respond"/> turns the request's token (empty when none) into the raw response.</summary>
    public static RawHttpResponder Start(Func<string, string> respond) => new(respond);

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        _listener.Stop();
        try
        {
            await _accepting;
        }
        catch (OperationCanceledException)
        {
        }

        _stopping.Dispose();
    }

    private async Task AcceptAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(cancellationToken);
            }
            catch (Exception) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }

            _ = AnswerAsync(client, cancellationToken);
        }
    }

    private async Task AnswerAsync(TcpClient client, CancellationToken cancellationToken)
    {
        using (client)
        {
            try
            {
                var stream = client.GetStream();
                var head = new StringBuilder();
                var buffer = new byte[4096];
                while (!head.ToString().Contains("\r\n\r\n", StringComparison.Ordinal) && head.Length < MaxHeadBytes)
                {
                    var read = await stream.ReadAsync(buffer, cancellationToken);
                    if (read == 0)
                    {
                        return;
                    }

                    head.Append(Encoding.ASCII.GetString(buffer, 0, read));
                }

                var token = head.ToString().Split("\r\n")
                    .FirstOrDefault(l => l.StartsWith("X-Consul-Token:", StringComparison.OrdinalIgnoreCase))?["X-Consul-Token:".Length..].Trim() ?? "";
                Interlocked.Increment(ref _requests);
                await stream.WriteAsync(Encoding.ASCII.GetBytes(_respond(token)), cancellationToken);
                await stream.FlushAsync(cancellationToken);
            }
            catch (Exception) when (cancellationToken.IsCancellationRequested)
            {
            }
            catch (IOException)
            {
            }
        }
    }
}
