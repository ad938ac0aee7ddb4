using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Lodestar.Discovery;
using Lodestar.Kubernetes.Api.Internal;
using Lodestar.Kubernetes.Tests.Infrastructure;
using Lodestar.Testing;
using Lodestar.Testing.Tls;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace Lodestar.Kubernetes.Tests.Api;

public sealed class ExecCredentialPluginTests : IDisposable
{
    private const string DisplayName = "Kubernetes API server https://127.0.0.1:6443 (kubeconfig context 'prod')";
    private static readonly DateTimeOffset s_start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);
    private readonly TempDirectory _directory = new();
    private readonly FakeTimeProvider _clock = new(s_start);
    private readonly SecretRedactor _redactor = new();

    public void Dispose() => _directory.Dispose();

    private ExecCredentialPlugin Plugin(string command, string apiVersion = ExecCredentialConfig.V1, Action<ExecCredentialConfigBuilder>? configure = null)
    {
        var builder = new ExecCredentialConfigBuilder { Command = command, ApiVersion = apiVersion };
        configure?.Invoke(builder);
        return new ExecCredentialPlugin(builder.Build(), DisplayName, _redactor, _clock, NullLogger.Instance);
    }

    [Fact]
    public async Task GetAsync_TokenWithExpiry_CachedUntilExpirationThenRunAgain()
    {
        var script = ExecPlugins.WriteFilePrinter(_directory, ExecPlugins.Credential("token-one-1234", s_start.AddMinutes(10)));
        using var plugin = Plugin(script);

        var first = await plugin.GetAsync(CancellationToken.None);
        var second = await plugin.GetAsync(CancellationToken.None);
        _clock.Advance(TimeSpan.FromMinutes(10) - TimeSpan.FromSeconds(1));
        var third = await plugin.GetAsync(CancellationToken.None);

        Assert.Equal("token-one-1234", first.Token);
        Assert.Same(first, second);
        Assert.Same(first, third);
        Assert.Equal(1, ExecPlugins.Runs(_directory));
        Assert.Equal(s_start.AddMinutes(10), first.Expires);

        _directory.Write("credential.json", ExecPlugins.Credential("token-two-5678", s_start.AddMinutes(20)));
        _clock.Advance(TimeSpan.FromSeconds(1));
        var renewed = await plugin.GetAsync(CancellationToken.None);

        Assert.Equal("token-two-5678", renewed.Token);
        Assert.Equal(2, ExecPlugins.Runs(_directory));
        Assert.Equal("***", _redactor.Redact("token-one-1234"));
        Assert.Equal("***", _redactor.Redact("token-two-5678"));
    }

    [Fact]
    public async Task GetAsync_NoExpiry_CachedUntilInvalidated()
    {
        var script = ExecPlugins.WriteFilePrinter(_directory, ExecPlugins.Credential("token-forever-1"));
        using var plugin = Plugin(script);

        var first = await plugin.GetAsync(CancellationToken.None);
        _clock.Advance(TimeSpan.FromDays(30));
        Assert.Same(first, await plugin.GetAsync(CancellationToken.None));
        plugin.Invalidate(first);
        var second = await plugin.GetAsync(CancellationToken.None);

        Assert.NotSame(first, second);
        Assert.Equal(2, ExecPlugins.Runs(_directory));
    }

    [Fact]
    public async Task Invalidate_CredentialAlreadyReplaced_KeepsTheNewOne()
    {
        var script = ExecPlugins.WriteFilePrinter(_directory, ExecPlugins.Credential("token-abcd-1"));
        using var plugin = Plugin(script);
        var old = await plugin.GetAsync(CancellationToken.None);
        plugin.Invalidate(old);
        var current = await plugin.GetAsync(CancellationToken.None);

        // A second request that used the old credential got its 401 late: it must not throw away the fresh one.
        plugin.Invalidate(old);

        Assert.Same(current, await plugin.GetAsync(CancellationToken.None));
        Assert.Equal(2, ExecPlugins.Runs(_directory));
    }

    [Fact]
    public async Task GetAsync_ConcurrentCallers_RunThePluginOnce()
    {
        var script = ExecPlugins.WriteScript(_directory, "slow.sh",
            $"echo run >> '{_directory.Path}/runs'\nsleep 0.3\necho '{ExecPlugins.Credential("token-shared-1")}'");
        using var plugin = Plugin(script);

        var results = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => plugin.GetAsync(CancellationToken.None).AsTask()));

        Assert.All(results, r => Assert.Same(results[0], r));
        Assert.Equal(1, ExecPlugins.Runs(_directory));
    }

    [Fact]
    public async Task GetAsync_ArgsEnvAndClusterInfo_ReachThePlugin()
    {
        var script = ExecPlugins.WriteScript(_directory, "inspect.sh",
            $"printf '%s\\n' \"$@\" > '{_directory.Path}/args'\n"
            + $"printf '%s' \"$REGION\" > '{_directory.Path}/region'\n"
            + $"printf '%s' \"$KUBERNETES_EXEC_INFO\" > '{_directory.Path}/info'\n"
            + $"echo '{ExecPlugins.Credential("token-env-1", apiVersion: ExecCredentialConfig.V1Beta1)}'");
        using var plugin = Plugin(script, ExecCredentialConfig.V1Beta1, b =>
        {
            b.Args = ["token", "--cluster-name", "prod east"];
            b.Environment = [new("REGION", "eu-west-1")];
            b.ProvideClusterInfo = true;
            b.CertificateAuthorityPem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
            b.TlsServerName = "api.prod.internal";
        });

        var credential = await plugin.GetAsync(CancellationToken.None);

        Assert.Equal("token-env-1", credential.Token);
        Assert.Equal(["token", "--cluster-name", "prod east"], File.ReadAllLines(Path.Combine(_directory.Path, "args")));
        Assert.Equal("eu-west-1", File.ReadAllText(Path.Combine(_directory.Path, "region")));
        using var info = JsonDocument.Parse(File.ReadAllText(Path.Combine(_directory.Path, "info")));
        var root = info.RootElement;
        Assert.Equal(ExecCredentialConfig.V1Beta1, root.GetProperty("apiVersion").GetString());
        Assert.Equal("ExecCredential", root.GetProperty("kind").GetString());
        Assert.False(root.GetProperty("spec").GetProperty("interactive").GetBoolean());
        var cluster = root.GetProperty("spec").GetProperty("cluster");
        Assert.Equal("https://127.0.0.1:6443", cluster.GetProperty("server").GetString());
        Assert.Equal("api.prod.internal", cluster.GetProperty("tls-server-name").GetString());
        Assert.Contains("BEGIN CERTIFICATE", Encoding.UTF8.GetString(cluster.GetProperty("certificate-authority-data").GetBytesFromBase64()), StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetAsync_WithoutProvideClusterInfo_SaysOnlyNotInteractive()
    {
        var script = ExecPlugins.WriteScript(_directory, "inspect.sh",
            $"printf '%s' \"$KUBERNETES_EXEC_INFO\" > '{_directory.Path}/info'\necho '{ExecPlugins.Credential("token-env-2")}'");
        using var plugin = Plugin(script);

        await plugin.GetAsync(CancellationToken.None);

        using var info = JsonDocument.Parse(File.ReadAllText(Path.Combine(_directory.Path, "info")));
        var spec = info.RootElement.GetProperty("spec");
        Assert.False(spec.GetProperty("interactive").GetBoolean());
        Assert.False(spec.TryGetProperty("cluster", out _));
    }

    [Fact]
    public async Task GetAsync_ClientCertificateAndKey_ReturnsCertificateWithPrivateKey()
    {
        using var authority = TestCertificates.CreateAuthority();
        using var client = TestCertificates.CreateClient(authority, "exec-client");
        var keyPem = TestCertificates.ExportPrivateKeyPem(client);
        var script = ExecPlugins.WriteFilePrinter(_directory, ExecPlugins.Credential(null, s_start.AddHours(1), certificatePem: client.ExportCertificatePem(), keyPem: keyPem));
        using var plugin = Plugin(script);

        var credential = await plugin.GetAsync(CancellationToken.None);

        Assert.Null(credential.Token);
        Assert.NotNull(credential.Certificate);
        Assert.True(credential.Certificate.HasPrivateKey);
        Assert.Equal(client.Thumbprint, credential.Certificate.Thumbprint);
        Assert.DoesNotContain("BEGIN", _redactor.Redact(keyPem), StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetAsync_ExitCodeNonZero_ErrorNamesPluginAndContextAndMasksKnownTokens()
    {
        var script = ExecPlugins.WriteFilePrinter(_directory, ExecPlugins.Credential("token-leaky-9876"));
        using var plugin = Plugin(script);
        var first = await plugin.GetAsync(CancellationToken.None);
        plugin.Invalidate(first);
        ExecPlugins.WriteScript(_directory, "print-credential.sh", "echo 'refresh failed for token-leaky-9876: Authorization: Bearer other-secret-55' >&2\nexit 3");

        var error = await Assert.ThrowsAsync<KubernetesApiException>(() => plugin.GetAsync(CancellationToken.None).AsTask());

        Assert.Contains($"exec credential plugin '{script}'", error.Message, StringComparison.Ordinal);
        Assert.Contains("context 'prod'", error.Message, StringComparison.Ordinal);
        Assert.Contains("exited with code 3", error.Message, StringComparison.Ordinal);
        Assert.Contains("refresh failed for ***", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("token-leaky-9876", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("other-secret-55", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("this is not json, and holds secret-in-garbage-42", "is not JSON")]
    [InlineData("[\"secret-in-garbage-42\"]", "not an object")]
    [InlineData("{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":42}}", "non-string value at status.token")]
    [InlineData("{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{}}", "neither status.token")]
    [InlineData("{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\"}", "without a status")]
    [InlineData("{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"secret-in-garbage-42\"}}", "apiVersion 'client.authentication.k8s.io/v1beta1'")]
    [InlineData("{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"Secret\",\"status\":{\"token\":\"secret-in-garbage-42\"}}", "kind 'Secret'")]
    [InlineData("{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"token\":\"secret-in-garbage-42\",\"expirationTimestamp\":\"soon\"}}", "expirationTimestamp is not an RFC 3339 time")]
    [InlineData("{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{\"clientCertificateData\":\"-----BEGIN CERTIFICATE-----\"}}", "without status.clientKeyData")]
    public async Task GetAsync_UnusableOutput_ErrorNamesThePluginWithoutQuotingTheOutput(string output, string expected)
    {
        var script = ExecPlugins.WriteFilePrinter(_directory, output);
        using var plugin = Plugin(script);

        var error = await Assert.ThrowsAsync<KubernetesApiException>(() => plugin.GetAsync(CancellationToken.None).AsTask());

        Assert.True(error.Message.Contains(expected, StringComparison.Ordinal), error.Message);
        Assert.Contains($"exec credential plugin '{script}' of kubeconfig context 'prod'", error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret-in-garbage-42", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetAsync_OutputBeyondCap_StoppedWithClearError()
    {
        var script = ExecPlugins.WriteScript(_directory, "flood.sh", "yes secret-flood-line-77");
        using var plugin = Plugin(script);

        var error = await Assert.ThrowsAsync<KubernetesApiException>(() => plugin.GetAsync(CancellationToken.None).AsTask());

        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"printed more than {ExecCredentialPlugin.MaxOutputBytes} bytes"), error.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("secret-flood-line-77", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GetAsync_PluginHangs_StoppedAtTheTimeoutOnTheClockWithItsChildren()
    {
        var pidFile = Path.Combine(_directory.Path, "pids");
        var script = ExecPlugins.WriteScript(_directory, "hang.sh", $"sleep 600 &\necho \"$$ $!\" > '{pidFile}.tmp'\nmv '{pidFile}.tmp' '{pidFile}'\nwait");
        using var plugin = Plugin(script);

        var pending = plugin.GetAsync(CancellationToken.None).AsTask();
        await Eventually.TrueAsync(() => File.Exists(pidFile), TimeSpan.FromSeconds(10), "the plugin started");
        var pids = File.ReadAllText(pidFile).Split(' ', StringSplitOptions.TrimEntries).Select(p => int.Parse(p, CultureInfo.InvariantCulture)).ToArray();
        Assert.False(pending.IsCompleted);
        _clock.Advance(ExecCredentialPlugin.DefaultTimeout);

        var error = await Assert.ThrowsAsync<KubernetesApiException>(() => pending.WaitAsync(TimeSpan.FromSeconds(10)));

        Assert.Contains("did not finish within 60 s and was stopped", error.Message, StringComparison.Ordinal);
        Assert.Contains("context 'prod'", error.Message, StringComparison.Ordinal);
        foreach (var pid in pids)
        {
            await Eventually.TrueAsync(() => !IsRunning(pid), TimeSpan.FromSeconds(10), $"process {pid} of the plugin was stopped");
        }
    }

    [Fact]
    public async Task GetAsync_CommandNotFound_ErrorCarriesTheInstallHint()
    {
        using var plugin = Plugin(Path.Combine(_directory.Path, "no-such-plugin"), configure: b => b.InstallHint = "Install it with: brew install no-such-plugin");

        var error = await Assert.ThrowsAsync<KubernetesApiException>(() => plugin.GetAsync(CancellationToken.None).AsTask());

        Assert.Contains("could not be started", error.Message, StringComparison.Ordinal);
        Assert.Contains("brew install no-such-plugin", error.Message, StringComparison.Ordinal);
        Assert.Contains("context 'prod'", error.Message, StringComparison.Ordinal);
    }

    private static bool IsRunning(int pid)
    {
        // A zombie (exited, not yet reaped by its parent) no longer runs; /proc says which.
        var status = $"/proc/{pid}/status";
        if (!File.Exists(status))
        {
            return false;
        }

        try
        {
            return !File.ReadAllLines(status).Any(l => l.StartsWith("State:", StringComparison.Ordinal) && l.Contains('Z', StringComparison.Ordinal));
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Builds an <see cref="ExecCredentialConfig"/> for a test.</summary>
    private sealed class ExecCredentialConfigBuilder
    {
        public required string Command { get; set; }

        public required string ApiVersion { get; set; }

        public IReadOnlyList<string> Args { get; set; } = [];

        public IReadOnlyList<KeyValuePair<string, string>> Environment { get; set; } = [];

        public string? InstallHint { get; set; }

        public bool ProvideClusterInfo { get; set; }

        public string? CertificateAuthorityPem { get; set; }

        public string? TlsServerName { get; set; }

        public ExecCredentialConfig Build() => new()
        {
            Command = Command,
            ResolvedCommand = Command,
            ApiVersion = ApiVersion,
            Args = Args,
            Environment = Environment,
            InstallHint = InstallHint,
            ProvideClusterInfo = ProvideClusterInfo,
            ContextName = "prod",
            Server = "https://127.0.0.1:6443",
            CertificateAuthorityPem = CertificateAuthorityPem,
            TlsServerName = TlsServerName,
        };
    }
}
