using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Lodestar.Testing.Tls;

namespace Lodestar.Testing.Etcd;

/// <summary>
/// A real etcd (the <c>etcd</c> binary, Debian package <c>etcd-server</c>) on free loopback ports with its own data
/// folder. It can be stopped, killed and started again on the same ports and data, and talks to etcd's JSON gateway
/// directly (independently of Lodestar's client) so tests can arrange and inspect the registry. In TLS mode
/// (<see cref="StartTlsAsync"/>) the client port serves only HTTPS; the fixture's own calls then trust the test CA
/// and present the test client certificate. <see cref="EtcdCluster"/> runs several of them as one cluster.
/// </summary>
public sealed class EtcdServer : IAsyncDisposable
{
    private static readonly TimeSpan s_startTimeout = TimeSpan.FromSeconds(20);
    private readonly string _dataDir;
    private readonly string[] _extraArgs;
    private readonly TlsFiles? _tls;
    private readonly bool _requireClientCertificate;
    private readonly ClusterMembership? _membership;
    private readonly ConcurrentQueue<string> _output = new();
    private readonly HttpClient _http;
    private Process? _process;
    private string? _token;
    private string? _user;
    private string? _password;

    private EtcdServer(int clientPort, int peerPort, string[] extraArgs, TlsFiles? tls, bool requireClientCertificate, ClusterMembership? membership)
    {
        ClientPort = clientPort;
        PeerPort = peerPort;
        _dataDir = Path.Combine(Path.GetTempPath(), "lodestar-etcd-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dataDir);
        _extraArgs = extraArgs;
        _tls = tls;
        _requireClientCertificate = requireClientCertificate;
        _membership = membership;
        _http = CreateHttpClient(TimeSpan.FromSeconds(10));
        _http.BaseAddress = new Uri(ClientUrl + "/");
    }

    /// <summary>Gets the client port.</summary>
    public int ClientPort { get; }

    /// <summary>Gets the peer port.</summary>
    public int PeerPort { get; }

    /// <summary>Gets the client URL, <c>http://127.0.0.1:{port}</c>, or <c>https://127.0.0.1:{port}</c> in TLS mode.</summary>
    public string ClientUrl => $"{(_tls is null ? "http" : "https")}://127.0.0.1:{ClientPort}";

    /// <summary>Gets the peer URL, <c>http://127.0.0.1:{port}</c>.</summary>
    public string PeerUrl => $"http://127.0.0.1:{PeerPort}";

    /// <summary>Gets the member name: <c>default</c> for a single server, <c>m0</c>, <c>m1</c>... in a cluster.</summary>
    public string Name => _membership?.Name ?? "default";

    /// <summary>Gets whether the process is running.</summary>
    public bool IsRunning => _process is { HasExited: false };

    /// <summary>Gets the last lines etcd wrote, for failure messages.</summary>
    public string RecentOutput => string.Join("\n", _output.TakeLast(40));

    /// <summary>Starts etcd on free loopback ports with a fresh data folder and waits until it is healthy.</summary>
    /// <param name="extraArgs">More command-line flags, for example <c>--auth-token-ttl=1</c>.</param>
    public static Task<EtcdServer> StartAsync(params string[] extraArgs) => StartCoreAsync(null, false, extraArgs);

    /// <summary>
    /// Starts etcd like <see cref="StartAsync(string[])"/>, but its client port serves HTTPS only, with
    /// <paramref name="files"/>' server certificate (and intermediate CA, if any).
    /// </summary>
    /// <param name="files">The certificates; etcd's server certificate must also allow client authentication, since
    /// etcd's JSON gateway dials etcd's gRPC server with it.</param>
    /// <param name="requireClientCertificate">Whether every client must present a certificate signed by <paramref name="files"/>' CA
    /// (<c>--trusted-ca-file</c> and <c>--client-cert-auth</c>).</param>
    /// <param name="extraArgs">More command-line flags.</param>
    public static Task<EtcdServer> StartTlsAsync(TlsFiles files, bool requireClientCertificate, params string[] extraArgs)
    {
        ArgumentNullException.ThrowIfNull(files);
        return StartCoreAsync(files, requireClientCertificate, extraArgs);
    }

    /// <summary>Creates (without starting) the members of a new cluster of <paramref name="size"/> on free loopback ports.</summary>
    internal static EtcdServer[] CreateClusterMembers(int size, string[] extraArgs)
    {
        RequireBinary();
        var ports = LoopbackPorts.Free(2 * size);
        var names = Enumerable.Range(0, size).Select(i => "m" + i.ToString(CultureInfo.InvariantCulture)).ToArray();
        var initialCluster = string.Join(",", names.Select((name, i) => $"{name}=http://127.0.0.1:{ports[2 * i + 1]}"));
        var token = "lodestar-" + Guid.NewGuid().ToString("N");
        return [.. names.Select((name, i) => new EtcdServer(ports[2 * i], ports[2 * i + 1], extraArgs, null, false, new ClusterMembership(name, initialCluster, token)))];
    }

    private static async Task<EtcdServer> StartCoreAsync(TlsFiles? tls, bool requireClientCertificate, string[] extraArgs)
    {
        RequireBinary();
        var ports = LoopbackPorts.Free(2);
        var server = new EtcdServer(ports[0], ports[1], extraArgs, tls, requireClientCertificate, null);
        try
        {
            await server.StartProcessAsync();
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    private static void RequireBinary()
    {
        if (FindBinary() is null)
        {
            throw new InvalidOperationException("The etcd binary is not installed; run 'apt-get install -y etcd-server' (scripts/test.sh does).");
        }
    }

    /// <summary>Starts etcd again on the same ports and data folder after a stop or kill.</summary>
    public Task RestartAsync()
    {
        if (IsRunning)
        {
            throw new InvalidOperationException("etcd is still running.");
        }

        // Tokens do not survive a restart.
        _token = null;
        return StartProcessAsync();
    }

    /// <summary>Stops etcd gracefully (SIGTERM) and waits for it to exit.</summary>
    public async Task StopAsync()
    {
        if (_process is not { HasExited: false } process)
        {
            return;
        }

        using (var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", process.Id.ToString(CultureInfo.InvariantCulture)]) { UseShellExecute = false }))
        {
            await kill!.WaitForExitAsync();
        }

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            await KillAsync();
        }
    }

    /// <summary>Kills etcd at once (SIGKILL), as a crash would.</summary>
    public async Task KillAsync()
    {
        if (_process is not { HasExited: false } process)
        {
            return;
        }

        process.Kill(entireProcessTree: true);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await process.WaitForExitAsync(timeout.Token);
    }

    /// <summary>Writes a key and returns the new revision.</summary>
    public async Task<long> PutAsync(string key, string value, long lease = 0)
    {
        var body = new JsonObject { ["key"] = B64(key), ["value"] = B64(value) };
        if (lease != 0)
        {
            body["lease"] = lease.ToString(CultureInfo.InvariantCulture);
        }

        var answer = await CallAsync("v3/kv/put", body);
        return Revision(answer);
    }

    /// <summary>Deletes a key and returns the new revision.</summary>
    public async Task<long> DeleteAsync(string key)
        => Revision(await CallAsync("v3/kv/deleterange", new JsonObject { ["key"] = B64(key) }));

    /// <summary>Reads a key's value, or <see langword="null"/> when it does not exist.</summary>
    public async Task<string?> GetAsync(string key)
    {
        var answer = await CallAsync("v3/kv/range", new JsonObject { ["key"] = B64(key) });
        return answer["kvs"] is JsonArray { Count: > 0 } kvs ? Encoding.UTF8.GetString(Convert.FromBase64String((string)kvs[0]!["value"]!)) : null;
    }

    /// <summary>Reads a key's lease ID, 0 when it has none or does not exist.</summary>
    public async Task<long> GetLeaseAsync(string key)
    {
        var answer = await CallAsync("v3/kv/range", new JsonObject { ["key"] = B64(key) });
        return answer["kvs"] is JsonArray { Count: > 0 } kvs && kvs[0]!["lease"] is { } lease ? long.Parse((string)lease!, CultureInfo.InvariantCulture) : 0;
    }

    /// <summary>Returns the current revision.</summary>
    public async Task<long> RevisionAsync()
        => Revision(await CallAsync("v3/kv/range", new JsonObject { ["key"] = B64("\0") }));

    /// <summary>
    /// Returns this member's ID and the ID of the leader it follows (0 when it knows none), from
    /// <c>/v3/maintenance/status</c>. Answered by the member alone, without a token, so it works during an election.
    /// </summary>
    public async Task<(ulong MemberId, ulong LeaderId)> StatusAsync()
    {
        using var response = await _http.PostAsync("v3/maintenance/status", Json(new JsonObject()));
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"etcd v3/maintenance/status failed: HTTP {(int)response.StatusCode} {text}");
        }

        var answer = JsonNode.Parse(text)!;
        return (Id(answer["header"]?["member_id"]), Id(answer["leader"]));

        static ulong Id(JsonNode? node) => node is null ? 0 : ulong.Parse((string)node!, CultureInfo.InvariantCulture);
    }

    /// <summary>Compacts the history up to <paramref name="revision"/> (physically, so older revisions are gone).</summary>
    public Task CompactAsync(long revision)
        => CallAsync("v3/kv/compaction", new JsonObject { ["revision"] = revision.ToString(CultureInfo.InvariantCulture), ["physical"] = true });

    /// <summary>Grants a lease and returns its ID.</summary>
    public async Task<long> GrantLeaseAsync(int ttlSeconds)
    {
        var answer = await CallAsync("v3/lease/grant", new JsonObject { ["TTL"] = ttlSeconds.ToString(CultureInfo.InvariantCulture) });
        return long.Parse((string)answer["ID"]!, CultureInfo.InvariantCulture);
    }

    /// <summary>Revokes a lease, deleting its keys.</summary>
    public Task RevokeLeaseAsync(long lease)
        => CallAsync("v3/lease/revoke", new JsonObject { ["ID"] = lease.ToString(CultureInfo.InvariantCulture) });

    /// <summary>Turns authentication on: adds <paramref name="user"/> with the root role, then enables auth.</summary>
    public async Task EnableAuthAsync(string user, string password)
    {
        await CallAsync("v3/auth/user/add", new JsonObject { ["name"] = user, ["password"] = password });
        await CallAsync("v3/auth/role/add", new JsonObject { ["name"] = "root" });
        await CallAsync("v3/auth/user/grant", new JsonObject { ["user"] = user, ["role"] = "root" });
        await CallAsync("v3/auth/enable", new JsonObject());
        _user = user;
        _password = password;
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await KillAsync();
        }
        catch (Exception ex) when (ex is InvalidOperationException or OperationCanceledException)
        {
            // Already gone.
        }

        _process?.Dispose();
        _http.Dispose();
        try
        {
            Directory.Delete(_dataDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    private static long Revision(JsonNode answer)
        => answer["header"]?["revision"] is { } revision ? long.Parse((string)revision!, CultureInfo.InvariantCulture) : 0;

    private static string? FindBinary() => InstalledPrograms.Find("etcd");

    private async Task<JsonNode> CallAsync(string path, JsonObject body)
    {
        for (var attempt = 0; ; attempt++)
        {
            if (_user is not null && _token is null)
            {
                using var auth = await _http.PostAsync("v3/auth/authenticate", Json(new JsonObject { ["name"] = _user, ["password"] = _password }));
                var answer = await auth.Content.ReadAsStringAsync();
                _token = (string?)JsonNode.Parse(answer)?["token"]
                         ?? throw new InvalidOperationException($"etcd v3/auth/authenticate gave no token: HTTP {(int)auth.StatusCode} {answer}");
            }

            using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = Json(body) };
            if (_token is not null)
            {
                request.Headers.TryAddWithoutValidation("Authorization", _token);
            }

            using var response = await _http.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            if (response.StatusCode == HttpStatusCode.Unauthorized && attempt == 0)
            {
                _token = null;
                continue;
            }

            if (!response.IsSuccessStatusCode)
            {
                throw new InvalidOperationException($"etcd {path} failed: HTTP {(int)response.StatusCode} {text}");
            }

            return JsonNode.Parse(text)!;
        }
    }

    private HttpClient CreateHttpClient(TimeSpan timeout)
        => _tls is null
            ? new HttpClient { Timeout = timeout }
            : new HttpClient(_tls.CreateHttpHandler(presentClientCertificate: true), disposeHandler: true) { Timeout = timeout };

    private IEnumerable<string> ClusterArguments()
    {
        if (_membership is null)
        {
            yield break;
        }

        yield return "--initial-cluster-token";
        yield return _membership.Token;
        yield return "--initial-cluster-state";
        yield return "new";
    }

    private IEnumerable<string> TlsArguments()
    {
        if (_tls is null)
        {
            yield break;
        }

        yield return "--cert-file";
        yield return _tls.ServerCertificatePath;
        yield return "--key-file";
        yield return _tls.ServerKeyPath;
        if (_requireClientCertificate)
        {
            // etcd demands client certificates as soon as it has a trusted CA file, so it is given one only here.
            yield return "--trusted-ca-file";
            yield return _tls.CaCertificatePath;
            yield return "--client-cert-auth";
        }
    }

    private static StringContent Json(JsonNode body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");

    private async Task StartProcessAsync()
    {
        LaunchProcess();
        await WaitHealthyAsync();
    }

    /// <summary>Starts the etcd process without waiting for it: a cluster's members become healthy only together.</summary>
    internal void LaunchProcess()
    {
        var peer = PeerUrl;
        var info = new ProcessStartInfo(FindBinary()!)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var arg in new[]
                 {
                     "--name", Name,
                     "--data-dir", _dataDir,
                     "--listen-client-urls", ClientUrl,
                     "--advertise-client-urls", ClientUrl,
                     "--listen-peer-urls", peer,
                     "--initial-advertise-peer-urls", peer,
                     "--initial-cluster", _membership?.InitialCluster ?? Name + "=" + peer,
                     "--logger", "zap",
                 }.Concat(ClusterArguments()).Concat(TlsArguments()).Concat(_extraArgs))
        {
            info.ArgumentList.Add(arg);
        }

        _process?.Dispose();
        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => Remember(e.Data);
        process.ErrorDataReceived += (_, e) => Remember(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;
    }

    /// <summary>Waits (up to 20 s) until etcd answers <c>/health</c> with true, which in a cluster needs a leader.</summary>
    internal async Task WaitHealthyAsync()
    {
        var process = _process ?? throw new InvalidOperationException("etcd was not started.");
        var deadline = Stopwatch.StartNew();
        using var probe = CreateHttpClient(TimeSpan.FromSeconds(2));
        for (var attempt = 0; attempt < 400; attempt++)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"etcd exited with code {process.ExitCode} while starting:\n{RecentOutput}");
            }

            try
            {
                var health = await probe.GetStringAsync(ClientUrl + "/health");
                if (health.Contains("\"true\"", StringComparison.Ordinal))
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            if (deadline.Elapsed > s_startTimeout)
            {
                break;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"etcd on {ClientUrl} was not healthy within {s_startTimeout.TotalSeconds} s:\n{RecentOutput}");
    }

    private void Remember(string? line)
    {
        if (line is null)
        {
            return;
        }

        _output.Enqueue(line);
        while (_output.Count > 200 && _output.TryDequeue(out _))
        {
        }
    }
}

/// <summary>How a member joins its cluster: its name, every member's peer URL and the cluster's token.</summary>
internal sealed record ClusterMembership(string Name, string InitialCluster, string Token);
