using System.Security.Cryptography.X509Certificates;
using System.Text;
using Lodestar.Kubernetes.Api.Internal;
using Lodestar.Kubernetes.Tests.Infrastructure;
using Lodestar.Testing.Tls;
using Microsoft.Extensions.Logging.Abstractions;

namespace Lodestar.Kubernetes.Tests.Api;

public sealed class KubeconfigLoaderTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    private string Write(string user, string cluster = "    server: https://10.1.2.3:6443", string extraContexts = "")
        => _directory.Write("config", $"""
            apiVersion: v1
            kind: Config
            current-context: dev
            clusters:
            - name: c1
              cluster:
            {cluster}
            contexts:
            - name: dev
              context:
                cluster: c1
                user: u1
                namespace: shop
            {extraContexts}
            users:
            - name: u1
              user:
            {user}
            """);

    [Fact]
    public void Load_InlineToken_ReadsServerNamespaceAndToken()
    {
        var config = KubeconfigLoader.Load([Write("    token: abc.def")], null);

        Assert.Equal(new Uri("https://10.1.2.3:6443"), config.Server);
        Assert.Equal("shop", config.Namespace);
        Assert.Equal("abc.def", config.Token);
        Assert.Null(config.TokenFile);
        Assert.Contains("https://10.1.2.3:6443", config.DisplayName, StringComparison.Ordinal);
        Assert.Contains("'dev'", config.DisplayName, StringComparison.Ordinal);
        Assert.DoesNotContain("abc.def", config.DisplayName, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_RelativeTokenFile_ResolvesAgainstTheKubeconfigFolder()
    {
        _directory.Write("secrets/token", "from-file\n");

        var config = KubeconfigLoader.Load([Write("    tokenFile: secrets/token")], null);

        Assert.Equal(Path.Combine(_directory.Path, "secrets", "token"), config.TokenFile);
        Assert.Null(config.Token);
    }

    [Fact]
    public void Load_ClientCertificateInlineAndByPath_LoadsCertificateWithKey()
    {
        using var authority = TestCertificates.CreateAuthority();
        using var client = TestCertificates.CreateClient(authority, "lodestar-client");
        var certificatePem = client.ExportCertificatePem();
        var keyPem = client.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem();

        var inline = KubeconfigLoader.Load([Write($"    client-certificate-data: {B64(certificatePem)}\n    client-key-data: {B64(keyPem)}")], null);
        _directory.Write("client.crt", certificatePem);
        _directory.Write("client.key", keyPem);
        var byPath = KubeconfigLoader.Load([Write("    client-certificate: client.crt\n    client-key: client.key")], null);

        Assert.True(inline.ClientCertificate!.HasPrivateKey);
        Assert.Equal(client.Thumbprint, inline.ClientCertificate.Thumbprint);
        Assert.True(byPath.ClientCertificate!.HasPrivateKey);
        Assert.Equal(client.Thumbprint, byPath.ClientCertificate.Thumbprint);
    }

    [Fact]
    public void Load_TokenAndClientKey_AreSecretsTheClientMasksInServerText()
    {
        using var authority = TestCertificates.CreateAuthority();
        using var certificate = TestCertificates.CreateClient(authority, "lodestar-client");
        var keyPem = certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem();
        var keyData = B64(keyPem);
        var config = KubeconfigLoader.Load([Write($"    token: kubeconfig-token-4e5f6a\n    client-certificate-data: {B64(certificate.ExportCertificatePem())}\n    client-key-data: {keyData}")], null);
        using var client = new KubernetesApiClient(config, 5, 10, TimeSpan.FromMinutes(1), TimeProvider.System, NullLogger.Instance);
        var keyLine = keyPem.Split('\n')[1].Trim();

        var text = client.Redact($"echo: kubeconfig-token-4e5f6a; data {keyData}; line {keyLine}; pem {keyPem}");

        Assert.DoesNotContain("kubeconfig-token-4e5f6a", text, StringComparison.Ordinal);
        Assert.DoesNotContain(keyData, text, StringComparison.Ordinal);
        Assert.DoesNotContain(keyLine, text, StringComparison.Ordinal);
        Assert.StartsWith("echo: ***; data ***; line ***; pem ", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_CertificateAuthorityInlineOrByPath_ReadsIt()
    {
        using var authority = TestCertificates.CreateAuthority();
        var pem = authority.ExportCertificatePem();
        _directory.Write("ca.crt", pem);

        var inline = KubeconfigLoader.Load([Write("    token: t", $"    server: https://k8s.example:443\n    certificate-authority-data: {B64(pem)}")], null);
        var byPath = KubeconfigLoader.Load([Write("    token: t", "    server: https://k8s.example:443\n    certificate-authority: ca.crt")], null);

        Assert.Equal(authority.Thumbprint, Assert.Single(inline.CertificateAuthorities!).Thumbprint);
        Assert.Equal(authority.Thumbprint, Assert.Single(byPath.CertificateAuthorities!).Thumbprint);
        Assert.False(inline.InsecureSkipTlsVerify);
    }

    [Fact]
    public void Load_InsecureSkipTlsVerify_IsRead()
    {
        var config = KubeconfigLoader.Load([Write("    token: t", "    server: https://10.1.2.3:6443\n    insecure-skip-tls-verify: true")], null);

        Assert.True(config.InsecureSkipTlsVerify);
        Assert.Null(config.CertificateAuthorities);
    }

    [Fact]
    public void Load_TlsServerName_IsReadAndAMalformedOneIsRefusedByName()
    {
        var config = KubeconfigLoader.Load([Write("    token: t", "    server: https://10.1.2.3:6443\n    tls-server-name: kubernetes.default.svc")], null);
        Assert.Equal("kubernetes.default.svc", config.TlsServerName);
        Assert.Null(KubeconfigLoader.Load([Write("    token: t")], null).TlsServerName);

        var error = Assert.Throws<KubernetesApiException>(
            () => KubeconfigLoader.Load([Write("    token: t", "    server: https://10.1.2.3:6443\n    tls-server-name: \"not a/name\"")], null));

        Assert.Contains("tls-server-name 'not a/name'", error.Message, StringComparison.Ordinal);
        Assert.Contains("context 'dev'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ExecPlugin_ReadsCommandArgsEnvAndClusterInfo()
    {
        var path = Write("""
                exec:
                  apiVersion: client.authentication.k8s.io/v1beta1
                  command: aws
                  args: [eks, get-token, --cluster-name, prod]
                  env:
                  - name: AWS_PROFILE
                    value: ops
                  installHint: Install the AWS CLI.
                  provideClusterInfo: true
                  interactiveMode: IfAvailable
            """, "    server: https://10.1.2.3:6443\n    tls-server-name: api.internal");

        var config = KubeconfigLoader.Load([path], null);

        var exec = Assert.IsType<ExecCredentialConfig>(config.Exec);
        Assert.Equal("aws", exec.Command);
        Assert.Equal("aws", exec.ResolvedCommand);
        Assert.Equal(["eks", "get-token", "--cluster-name", "prod"], exec.Args);
        Assert.Equal([new KeyValuePair<string, string>("AWS_PROFILE", "ops")], exec.Environment);
        Assert.Equal(ExecCredentialConfig.V1Beta1, exec.ApiVersion);
        Assert.Equal("Install the AWS CLI.", exec.InstallHint);
        Assert.True(exec.ProvideClusterInfo);
        Assert.Equal("dev", exec.ContextName);
        Assert.Equal("https://10.1.2.3:6443", exec.Server);
        Assert.Equal("api.internal", exec.TlsServerName);
        Assert.Null(config.Token);
    }

    [Fact]
    public void Load_ExecPluginRelativePathWithSeparator_ResolvedAgainstTheKubeconfigFolder()
    {
        var path = Write("    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: ./bin/get-token\n      interactiveMode: Never");

        var exec = KubeconfigLoader.Load([path], null).Exec!;

        Assert.Equal("./bin/get-token", exec.Command);
        Assert.Equal(Path.Combine(_directory.Path, "bin", "get-token"), exec.ResolvedCommand);
    }

    [Theory]
    [InlineData("      apiVersion: client.authentication.k8s.io/v1\n      command: kubelogin\n      interactiveMode: Always", "interactiveMode: Always")]
    [InlineData("      apiVersion: client.authentication.k8s.io/v1alpha1\n      command: kubelogin", "apiVersion 'client.authentication.k8s.io/v1alpha1'")]
    [InlineData("      command: kubelogin", "has no apiVersion")]
    [InlineData("      apiVersion: client.authentication.k8s.io/v1\n      command: kubelogin\n      interactiveMode: Sometimes", "interactiveMode 'Sometimes'")]
    [InlineData("      apiVersion: client.authentication.k8s.io/v1\n      command: kubelogin\n      env:\n      - value: x", "env entry without a name at position 0")]
    public void Load_UnusableExecPlugin_FailsNamingThePluginAndContext(string exec, string expected)
    {
        var path = Write("    exec:\n" + exec);

        var error = Assert.Throws<KubernetesApiException>(() => KubeconfigLoader.Load([path], null));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
        Assert.Contains("exec credential plugin 'kubelogin'", error.Message, StringComparison.Ordinal);
        Assert.Contains("context 'dev'", error.Message, StringComparison.Ordinal);
        Assert.Contains("https://10.1.2.3:6443", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_NamedContextAndUnknownContext_ChoosesOrListsContexts()
    {
        var path = Write("    token: t", extraContexts: "- name: prod\n  context:\n    cluster: c1\n    user: u1\n    namespace: live");

        Assert.Equal("live", KubeconfigLoader.Load([path], "prod").Namespace);
        var error = Assert.Throws<KubernetesApiException>(() => KubeconfigLoader.Load([path], "staging"));
        Assert.Contains("no context 'staging'", error.Message, StringComparison.Ordinal);
        Assert.Contains("dev, prod", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetPaths_KubeconfigVariableWithSeveralFiles_FirstDefinitionWins()
    {
        var first = _directory.Write("a.yaml", "current-context: dev\nusers:\n- name: u1\n  user:\n    token: first\n");
        var second = Write("    token: second");
        var paths = KubeconfigLoader.GetPaths(null, name => name == "KUBECONFIG" ? first + Path.PathSeparator + second : null, null);

        var config = KubeconfigLoader.Load(paths, null);

        Assert.Equal([first, second], paths);
        Assert.Equal("first", config.Token);
        Assert.Equal(new Uri("https://10.1.2.3:6443"), config.Server);
    }

    [Fact]
    public void Load_MissingFileOrBadYaml_ClearError()
    {
        var missing = Assert.Throws<KubernetesApiException>(() => KubeconfigLoader.Load([Path.Combine(_directory.Path, "nope")], null));
        Assert.Contains("No kubeconfig file found", missing.Message, StringComparison.Ordinal);

        var bad = _directory.Write("bad", "clusters: [\n  - {name: x");
        var malformed = Assert.Throws<KubernetesApiException>(() => KubeconfigLoader.Load([bad], null));
        Assert.Contains("not valid YAML", malformed.Message, StringComparison.Ordinal);
    }
}
