using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Lodestar.Testing.Dns;

/// <summary>
/// A real dnsmasq on 127.0.0.1, UDP and TCP on one free port, authoritative for <see cref="Zone"/> (unless started
/// otherwise) with every answer's TTL set to <c>ttlSeconds</c> and an SOA in negative answers. Records come from a temporary configuration file
/// (<c>host-record</c>, <c>srv-host</c>, <c>cname</c>, <c>txt-record</c> lines) and a hosts file that
/// <see cref="SetHostsAsync"/> rewrites and reloads with SIGHUP.
/// </summary>
public sealed class DnsmasqServer : IAsyncDisposable
{
    /// <summary>The zone the server is authoritative for.</summary>
    public const string Zone = "lodestar.test";

    private const string Binary = "/usr/sbin/dnsmasq";
    private readonly Process _process;
    private readonly DirectoryInfo _directory;
    private readonly StringBuilder _log;

    private DnsmasqServer(Process process, DirectoryInfo directory, int port, StringBuilder log)
    {
        _process = process;
        _directory = directory;
        Port = port;
        _log = log;
    }

    /// <summary>Gets the port dnsmasq listens on (UDP and TCP).</summary>
    public int Port { get; }

    /// <summary>Gets the server's address.</summary>
    public IPEndPoint EndPoint => new(IPAddress.Loopback, Port);

    /// <summary>Gets the server as <c>127.0.0.1:port</c>.</summary>
    public string Server => "127.0.0.1:" + Port.ToString(CultureInfo.InvariantCulture);

    /// <summary>Gets what dnsmasq has written to stderr so far.</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    /// <summary>Returns whether dnsmasq is installed; tests skip with a clear message when it is not.</summary>
    public static bool IsInstalled => File.Exists(Binary);

    /// <summary>Starts dnsmasq.</summary>
    /// <param name="configLines">dnsmasq configuration lines (records), for example <c>srv-host=_http._tcp.svc.lodestar.test,a.lodestar.test,8080</c>.</param>
    /// <param name="hostsLines">Lines of the hosts file, <c>address name</c>.</param>
    /// <param name="ttlSeconds">TTL of every answer and of the SOA (so also the negative TTL).</param>
    /// <param name="authoritative">
    /// <see langword="true"/> (default) to serve <see cref="Zone"/> authoritatively; <see langword="false"/> for a
    /// forwarder with no upstream server: it answers what its hosts file and records hold and REFUSES every other
    /// question, including the AAAA question of a name it knows only an A record for.
    /// </param>
    public static async Task<DnsmasqServer> StartAsync(IEnumerable<string>? configLines = null, IEnumerable<string>? hostsLines = null, int ttlSeconds = 2,
        bool authoritative = true)
    {
        if (!IsInstalled)
        {
            throw new InvalidOperationException($"dnsmasq is not installed at {Binary}; install the Debian package dnsmasq (apt-get install -y dnsmasq).");
        }

        var directory = Directory.CreateTempSubdirectory("lodestar-dnsmasq-");
        // dnsmasq drops privileges after start and must still read the hosts file on SIGHUP.
        SetMode(directory.FullName, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
                                                 | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        var conf = new StringBuilder();
        if (authoritative)
        {
            conf.AppendLine(CultureInfo.InvariantCulture, $"auth-zone={Zone}")
                .AppendLine(CultureInfo.InvariantCulture, $"auth-server=ns.{Zone},127.0.0.1")
                .AppendLine(CultureInfo.InvariantCulture, $"auth-soa=1,hostmaster.{Zone},1200,120,1209600")
                .AppendLine(CultureInfo.InvariantCulture, $"auth-ttl={ttlSeconds}");
        }

        conf.AppendLine(CultureInfo.InvariantCulture, $"local-ttl={ttlSeconds}");
        foreach (var line in configLines ?? [])
        {
            conf.AppendLine(line);
        }

        var confPath = Path.Combine(directory.FullName, "dnsmasq.conf");
        var hostsPath = Path.Combine(directory.FullName, "hosts");
        await File.WriteAllTextAsync(confPath, conf.ToString());
        await File.WriteAllLinesAsync(hostsPath, hostsLines ?? []);
        MakeReadable(confPath);
        MakeReadable(hostsPath);

        Exception? lastError = null;
        for (var attempt = 0; attempt < 5; attempt++)
        {
            var port = FindFreePort();
            var log = new StringBuilder();
            var info = new ProcessStartInfo(Binary)
            {
                RedirectStandardError = true,
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            foreach (var argument in new[]
                     {
                         "--keep-in-foreground", "--log-facility=-", "--bind-interfaces", "--listen-address=127.0.0.1",
                         "--port=" + port.ToString(CultureInfo.InvariantCulture), "--no-resolv", "--no-hosts", "--no-poll",
                         "--pid-file=", "--conf-file=" + confPath, "--addn-hosts=" + hostsPath,
                     })
            {
                info.ArgumentList.Add(argument);
            }

            var process = Process.Start(info)!;
            process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                {
                    lock (log)
                    {
                        log.AppendLine(e.Data);
                    }
                }
            };
            process.OutputDataReceived += (_, _) => { };
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            var server = new DnsmasqServer(process, directory, port, log);
            if (await server.WaitReadyAsync(TimeSpan.FromSeconds(10)))
            {
                return server;
            }

            lastError = new InvalidOperationException($"dnsmasq did not start on port {port}: {server.Log}");
            await server.StopProcessAsync();
        }

        directory.Delete(recursive: true);
        throw lastError!;
    }

    /// <summary>Rewrites the hosts file and makes dnsmasq reload it (SIGHUP).</summary>
    public async Task SetHostsAsync(IEnumerable<string> hostsLines)
    {
        var path = Path.Combine(_directory.FullName, "hosts");
        var temp = path + ".new";
        await File.WriteAllLinesAsync(temp, hostsLines);
        MakeReadable(temp);
        File.Move(temp, path, overwrite: true);
        using var kill = Process.Start(new ProcessStartInfo("kill") { ArgumentList = { "-HUP", _process.Id.ToString(CultureInfo.InvariantCulture) }, UseShellExecute = false })!;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await kill.WaitForExitAsync(cts.Token);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        await StopProcessAsync();
        try
        {
            _directory.Delete(recursive: true);
        }
        catch (IOException)
        {
            // Best effort: a temp directory left behind is harmless.
        }
    }

    private async Task StopProcessAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                await _process.WaitForExitAsync(cts.Token);
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
    }

    private async Task<bool> WaitReadyAsync(TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < timeout)
        {
            if (_process.HasExited)
            {
                return false;
            }

            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, Port);
                return true;
            }
            catch (SocketException)
            {
                await Task.Delay(20);
            }
        }

        return false;
    }

    private static int FindFreePort()
    {
        // A port free for both TCP and UDP; dnsmasq may still lose a race for it, which the caller retries.
        for (var i = 0; i < 50; i++)
        {
            using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            tcp.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            var port = ((IPEndPoint)tcp.LocalEndPoint!).Port;
            using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            try
            {
                udp.Bind(new IPEndPoint(IPAddress.Loopback, port));
                return port;
            }
            catch (SocketException)
            {
            }
        }

        throw new InvalidOperationException("No loopback port is free for both TCP and UDP.");
    }

    private static void MakeReadable(string path)
        => SetMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);

    private static void SetMode(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, mode);
        }
    }
}
