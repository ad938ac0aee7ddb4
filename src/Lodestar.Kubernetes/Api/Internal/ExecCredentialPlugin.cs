using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Lodestar.Discovery;
using Microsoft.Extensions.Logging;

namespace Lodestar.Kubernetes.Api.Internal;

/// <summary>
/// Runs a kubeconfig <c>exec</c> credential plugin (<c>client.authentication.k8s.io</c> v1 or v1beta1) as client-go
/// does, and caches what it prints (a bearer token, or a client certificate and key) until its
/// <c>expirationTimestamp</c>, or until the API server rejects it.
/// </summary>
/// <remarks>
/// <para>
/// Lodestar runs unattended: the plugin gets no terminal and no standard input, and <c>KUBERNETES_EXEC_INFO</c> says
/// <c>interactive: false</c>. A plugin that fails, prints something that is not an ExecCredential, prints more than
/// <see cref="MaxOutputBytes"/> or runs longer than <see cref="DefaultTimeout"/> (on the injected clock) gives an error naming
/// the command and the kubeconfig context; a plugin still running then is killed, with the processes it started. What
/// the plugin printed is never quoted: only its standard error, through the cluster's redactor, which learns every
/// token and key the plugin hands out before anything else sees them.
/// </para>
/// <para>One run at a time: requests that find the credential expired wait for the same run. Thread-safe.</para>
/// </remarks>
internal sealed partial class ExecCredentialPlugin : IDisposable
{
    /// <summary>How long one run of the plugin may take before it is killed.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(1);

    /// <summary>The most bytes the plugin may print on standard output; an ExecCredential is a few KiB.</summary>
    public const int MaxOutputBytes = 1024 * 1024;

    // The part of standard error kept for the message; the rest is read and dropped so the plugin never blocks on a pipe.
    private const int MaxErrorTextBytes = 2048;

    private readonly ExecCredentialConfig _config;
    private readonly SecretRedactor _redactor;
    private readonly TimeProvider _timeProvider;
    private readonly ILogger _logger;
    private readonly string _description;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private ExecCredential? _cached;

    public ExecCredentialPlugin(ExecCredentialConfig config, string displayName, SecretRedactor redactor, TimeProvider timeProvider, ILogger logger)
    {
        _config = config;
        _redactor = redactor;
        _timeProvider = timeProvider;
        _logger = logger;
        _description = $"The exec credential plugin '{config.Command}' of kubeconfig context '{config.ContextName}' for {displayName}";
    }

    /// <summary>Returns the cached credential while it is valid, else runs the plugin (once, whatever the number of callers).</summary>
    /// <exception cref="KubernetesApiException">The plugin could not be run, failed, hung or printed no usable credential.</exception>
    public async ValueTask<ExecCredential> GetAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _cached) is { } cached && IsValid(cached))
        {
            return cached;
        }

        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_cached is { } current && IsValid(current))
            {
                return current;
            }

            var credential = await RunAsync(cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _cached, credential);
            return credential;
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>
    /// Forgets <paramref name="rejected"/> after the API server refused it (401), so the next request runs the plugin
    /// again; a credential that was already replaced is left alone.
    /// </summary>
    public void Invalidate(ExecCredential rejected)
    {
        if (ReferenceEquals(Interlocked.CompareExchange(ref _cached, null, rejected), rejected))
        {
            Log.CredentialRejected(_logger, _config.Command, _config.ContextName);
        }
    }

    public void Dispose() => _gate.Dispose();

    private bool IsValid(ExecCredential credential) => credential.Expires is not { } expires || _timeProvider.GetUtcNow() < expires;

    private async Task<ExecCredential> RunAsync(CancellationToken cancellationToken)
    {
        using var process = new Process { StartInfo = CreateStartInfo() };
        using var deadline = new CancellationTokenSource(DefaultTimeout, _timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            process.Start();
        }
        catch (Exception ex) when (ex is Win32Exception or InvalidOperationException or IOException)
        {
            var hint = string.IsNullOrWhiteSpace(_config.InstallHint) ? "" : " " + _config.InstallHint.Trim();
            throw Error($"could not be started ({ex.Message}); is it installed and on the PATH?{hint}");
        }

        Log.Running(_logger, _config.Command, _config.ContextName);
        try
        {
            // Never interactive: the plugin reads end-of-file if it tries to prompt.
            process.StandardInput.Close();
            var output = ReadOutputAsync(process.StandardOutput.BaseStream, linked.Token);
            var errors = ReadErrorTextAsync(process.StandardError.BaseStream, linked.Token);
            var stdout = await output.ConfigureAwait(false);
            var stderr = await errors.ConfigureAwait(false);
            await process.WaitForExitAsync(linked.Token).ConfigureAwait(false);
            if (process.ExitCode != 0)
            {
                var detail = stderr.Length == 0 ? "" : ": " + _redactor.Redact(stderr);
                throw Error(string.Create(CultureInfo.InvariantCulture, $"exited with code {process.ExitCode}{detail}"));
            }

            return Parse(stdout);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw Error(string.Create(CultureInfo.InvariantCulture, $"did not finish within {DefaultTimeout.TotalSeconds:0.###} s and was stopped"));
        }
        finally
        {
            Stop(process);
        }
    }

    private ProcessStartInfo CreateStartInfo()
    {
        var start = new ProcessStartInfo(_config.ResolvedCommand)
        {
            UseShellExecute = false,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            CreateNoWindow = true,
        };
        foreach (var argument in _config.Args)
        {
            start.ArgumentList.Add(argument);
        }

        foreach (var (name, value) in _config.Environment)
        {
            start.Environment[name] = value;
        }

        start.Environment["KUBERNETES_EXEC_INFO"] = ExecInfo();
        return start;
    }

    /// <summary>The ExecCredential handed to the plugin: its spec says the run is not interactive and, when asked, names the cluster.</summary>
    private string ExecInfo()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("apiVersion", _config.ApiVersion);
            json.WriteString("kind", "ExecCredential");
            json.WriteStartObject("spec");
            if (_config.ProvideClusterInfo)
            {
                json.WriteStartObject("cluster");
                json.WriteString("server", _config.Server);
                if (_config.TlsServerName is { } serverName)
                {
                    json.WriteString("tls-server-name", serverName);
                }

                if (_config.InsecureSkipTlsVerify)
                {
                    json.WriteBoolean("insecure-skip-tls-verify", true);
                }

                if (_config.CertificateAuthorityPem is { } authority)
                {
                    json.WriteBase64String("certificate-authority-data", Encoding.UTF8.GetBytes(authority));
                }

                json.WriteEndObject();
            }

            json.WriteBoolean("interactive", false);
            json.WriteEndObject();
            json.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    private async Task<byte[]> ReadOutputAsync(Stream stream, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        while (true)
        {
            var read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return buffer.ToArray();
            }

            if (buffer.Length + read > MaxOutputBytes)
            {
                throw Error(string.Create(CultureInfo.InvariantCulture, $"printed more than {MaxOutputBytes} bytes, which is not an ExecCredential; it was stopped"));
            }

            buffer.Write(chunk, 0, read);
        }
    }

    private static async Task<string> ReadErrorTextAsync(Stream stream, CancellationToken cancellationToken)
    {
        var kept = new byte[MaxErrorTextBytes];
        var length = 0;
        var chunk = new byte[4096];
        while (true)
        {
            var read = await stream.ReadAsync(chunk, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return Encoding.UTF8.GetString(kept, 0, length).Trim();
            }

            var take = Math.Min(read, kept.Length - length);
            chunk.AsSpan(0, take).CopyTo(kept.AsSpan(length));
            length += take;
        }
    }

    /// <summary>Reads the ExecCredential the plugin printed; its secrets reach the redactor before any check can fail.</summary>
    private ExecCredential Parse(byte[] output)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(output, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException ex)
        {
            // The exception's message may quote the output, which may hold a token: only the position is reported.
            throw Error(string.Create(CultureInfo.InvariantCulture,
                $"printed output that is not JSON (line {(ex.LineNumber ?? 0) + 1}, byte {(ex.BytePositionInLine ?? 0) + 1}); an ExecCredential was expected"));
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw Error("printed JSON that is not an object; an ExecCredential was expected");
            }

            var status = Property(root, "status", JsonValueKind.Object);
            var token = status is { } s1 ? String(s1, "token", "status.token") : null;
            var certificatePem = status is { } s2 ? String(s2, "clientCertificateData", "status.clientCertificateData") : null;
            var keyPem = status is { } s3 ? String(s3, "clientKeyData", "status.clientKeyData") : null;
            _redactor.Add(token, keyPem);
            if (keyPem is not null)
            {
                foreach (var line in keyPem.Split('\n', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
                {
                    if (!line.StartsWith("-----", StringComparison.Ordinal) && line.Length >= 16)
                    {
                        _redactor.Add(line);
                    }
                }
            }

            var kind = String(root, "kind", "kind");
            var apiVersion = String(root, "apiVersion", "apiVersion");
            if (kind != "ExecCredential")
            {
                throw Error($"printed an object of kind '{KubernetesApiClient.Truncate(_redactor.Redact(kind), 64)}'; an ExecCredential was expected");
            }

            if (apiVersion != _config.ApiVersion)
            {
                throw Error($"printed an ExecCredential of apiVersion '{KubernetesApiClient.Truncate(_redactor.Redact(apiVersion), 64)}', but the kubeconfig asks for '{_config.ApiVersion}'");
            }

            if (status is null)
            {
                throw Error("printed an ExecCredential without a status");
            }

            DateTimeOffset? expires = null;
            if (String(status.Value, "expirationTimestamp", "status.expirationTimestamp") is { Length: > 0 } timestamp)
            {
                if (!DateTimeOffset.TryParse(timestamp, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var parsed))
                {
                    throw Error("printed an ExecCredential whose status.expirationTimestamp is not an RFC 3339 time");
                }

                expires = parsed;
            }

            X509Certificate2? certificate = null;
            if (certificatePem is { Length: > 0 } || keyPem is { Length: > 0 })
            {
                if (certificatePem is not { Length: > 0 } || keyPem is not { Length: > 0 })
                {
                    throw Error($"printed an ExecCredential with status.{(certificatePem is { Length: > 0 } ? "clientCertificateData" : "clientKeyData")} but without status.{(certificatePem is { Length: > 0 } ? "clientKeyData" : "clientCertificateData")}; both are needed");
                }

                certificate = LoadCertificate(certificatePem, keyPem);
            }

            if (string.IsNullOrEmpty(token) && certificate is null)
            {
                throw Error("printed an ExecCredential with neither status.token nor status.clientCertificateData and status.clientKeyData");
            }

            if (_logger.IsEnabled(LogLevel.Debug))
            {
                Log.Obtained(_logger, _config.Command, _config.ContextName, token is { Length: > 0 } ? "a token" : "a client certificate",
                    expires?.ToString("O", CultureInfo.InvariantCulture) ?? "(no expiry)");
            }

            return new ExecCredential(string.IsNullOrEmpty(token) ? null : token, certificate, expires);
        }
    }

    private X509Certificate2 LoadCertificate(string certificatePem, string keyPem)
    {
        try
        {
            using var pem = X509Certificate2.CreateFromPem(certificatePem, keyPem);
            // A PEM-loaded key is ephemeral; a PKCS#12 round trip gives TLS a key it can use on every platform.
            return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (CryptographicException ex)
        {
            throw Error($"printed a client certificate or key that is not valid PEM, or that do not match ({_redactor.Redact(ex.Message)})");
        }
    }

    private static JsonElement? Property(JsonElement element, string name, JsonValueKind kind)
        => element.TryGetProperty(name, out var value) && value.ValueKind == kind ? value : null;

    private string? String(JsonElement element, string name, string path)
    {
        if (!element.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        if (value.ValueKind != JsonValueKind.String)
        {
            throw Error($"printed an ExecCredential with a non-string value at {path}");
        }

        return value.GetString();
    }

    private KubernetesApiException Error(string text) => new(_redactor.Redact($"{_description} {text}.")!);

    /// <summary>Kills the plugin (and what it started) when it is still running: it is the only process stopped here.</summary>
    private void Stop(Process process)
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                Log.Killed(_logger, _config.Command, _config.ContextName);
            }
        }
        catch (Exception ex) when (ex is InvalidOperationException or Win32Exception or NotSupportedException)
        {
            // It exited between the check and the kill, or was never started.
        }
    }

    private static partial class Log
    {
        [LoggerMessage(120, LogLevel.Debug, "Running the exec credential plugin {Command} of kubeconfig context {Context}.", EventName = "ExecPluginRunning")]
        public static partial void Running(ILogger logger, string command, string context);

        [LoggerMessage(121, LogLevel.Debug, "The exec credential plugin {Command} of kubeconfig context {Context} gave {What}, valid until {Expires}.", EventName = "ExecPluginCredential")]
        public static partial void Obtained(ILogger logger, string command, string context, string what, string expires);

        [LoggerMessage(122, LogLevel.Information, "The API server rejected the credential of the exec plugin {Command} (kubeconfig context {Context}); it runs again.", EventName = "ExecCredentialRejected")]
        public static partial void CredentialRejected(ILogger logger, string command, string context);

        [LoggerMessage(123, LogLevel.Warning, "Stopped the exec credential plugin {Command} of kubeconfig context {Context}, which was still running.", EventName = "ExecPluginKilled")]
        public static partial void Killed(ILogger logger, string command, string context);
    }
}

/// <summary>What an exec plugin handed out: a bearer token, a client certificate, or both, and until when.</summary>
internal sealed record ExecCredential(string? Token, X509Certificate2? Certificate, DateTimeOffset? Expires);
