using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Lodestar.Testing.Tls;

/// <summary>
/// A throw-away public key infrastructure written as PEM files into a temporary folder that is deleted on dispose: a
/// CA, a server certificate for <c>127.0.0.1</c> and <c>localhost</c> signed by it (optionally through an
/// intermediate CA), a client certificate signed by it, and a second, unrelated CA for negative tests. Certificates
/// and keys are separate files, as servers such as etcd and Consul take them.
/// </summary>
public sealed class TlsFiles : IDisposable
{
    private static readonly Oid s_serverAuth = new("1.3.6.1.5.5.7.3.1");
    private static readonly Oid s_clientAuth = new("1.3.6.1.5.5.7.3.2");

    private TlsFiles(string directoryPath, X509Certificate2 authority, X509Certificate2? intermediate, X509Certificate2 server,
        X509Certificate2 client, X509Certificate2 otherAuthority)
    {
        DirectoryPath = directoryPath;
        Authority = authority;
        Intermediate = intermediate;
        ServerCertificate = server;
        ClientCertificate = client;
        OtherAuthority = otherAuthority;
    }

    /// <summary>Gets the temporary folder holding the files.</summary>
    public string DirectoryPath { get; }

    /// <summary>Gets the CA (with its private key) that signs the client certificate and, directly or through <see cref="Intermediate"/>, the server certificate.</summary>
    public X509Certificate2 Authority { get; }

    /// <summary>Gets the intermediate CA between <see cref="Authority"/> and the server certificate, or <see langword="null"/> when the CA signs it directly.</summary>
    public X509Certificate2? Intermediate { get; }

    /// <summary>Gets the server certificate with its private key; its subject alternative names are <c>127.0.0.1</c> and <c>localhost</c> unless <see cref="Create"/> was given another name.</summary>
    public X509Certificate2 ServerCertificate { get; }

    /// <summary>Gets the client certificate (extended key usage clientAuth) with its private key.</summary>
    public X509Certificate2 ClientCertificate { get; }

    /// <summary>Gets a second CA that signed nothing here: configured as the trusted CA, it must make the server untrusted.</summary>
    public X509Certificate2 OtherAuthority { get; }

    /// <summary>Gets the PEM file of <see cref="Authority"/>'s certificate (no key).</summary>
    public string CaCertificatePath => Path.Combine(DirectoryPath, "ca.pem");

    /// <summary>Gets the PEM file of the server certificate, followed by <see cref="Intermediate"/> when there is one (the chain a server sends).</summary>
    public string ServerCertificatePath => Path.Combine(DirectoryPath, "server.pem");

    /// <summary>Gets the PEM file of the server certificate's private key (PKCS#8).</summary>
    public string ServerKeyPath => Path.Combine(DirectoryPath, "server-key.pem");

    /// <summary>Gets the PEM file of the client certificate.</summary>
    public string ClientCertificatePath => Path.Combine(DirectoryPath, "client.pem");

    /// <summary>Gets the PEM file of the client certificate's private key (PKCS#8).</summary>
    public string ClientKeyPath => Path.Combine(DirectoryPath, "client-key.pem");

    /// <summary>Gets one PEM file holding the client certificate and then its private key.</summary>
    public string ClientCertificateAndKeyPath => Path.Combine(DirectoryPath, "client-with-key.pem");

    /// <summary>Gets the PEM file of <see cref="OtherAuthority"/>'s certificate.</summary>
    public string OtherCaCertificatePath => Path.Combine(DirectoryPath, "other-ca.pem");

    /// <summary>Gets the certificates a server sends after its own: the intermediate CA, or none.</summary>
    public X509Certificate2Collection ServerChain => Intermediate is null ? [] : [Intermediate];

    /// <summary>Creates the certificates and writes them into a new temporary folder.</summary>
    /// <param name="serverSignedByIntermediate">Whether an intermediate CA signs the server certificate instead of the CA itself.</param>
    /// <param name="serverDnsName">A DNS name that is then the server certificate's only name (so it does not name
    /// <c>127.0.0.1</c>), or <see langword="null"/> for <c>127.0.0.1</c> and <c>localhost</c>.</param>
    public static TlsFiles Create(bool serverSignedByIntermediate = false, string? serverDnsName = null)
    {
        var directory = Path.Combine(Path.GetTempPath(), "lodestar-tls-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        var authority = TestCertificates.CreateAuthority("Lodestar Test CA");
        var intermediate = serverSignedByIntermediate ? TestCertificates.CreateIntermediate(authority) : null;
        var server = TestCertificates.CreateServer(intermediate ?? authority, alsoClientAuth: true, dnsNames: serverDnsName is null ? null : [serverDnsName]);
        var client = TestCertificates.CreateClient(authority);
        var other = TestCertificates.CreateAuthority("Unrelated Test CA");
        var files = new TlsFiles(directory, authority, intermediate, server, client, other);
        try
        {
            files.Write();
            return files;
        }
        catch
        {
            files.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Returns whether <paramref name="certificate"/> chains to <see cref="Authority"/> alone (the system store is not
    /// consulted) and allows server authentication (<paramref name="forServer"/>) or client authentication; the
    /// certificates in <paramref name="presented"/> may serve as intermediates.
    /// </summary>
    public bool IsIssuedByAuthority(X509Certificate2 certificate, X509Chain? presented, bool forServer)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(Authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.ApplicationPolicy.Add(forServer ? s_serverAuth : s_clientAuth);
        if (presented is not null)
        {
            foreach (var element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        return chain.Build(certificate);
    }

    /// <summary>
    /// Returns whether <paramref name="text"/> holds any of the client's private key: a PEM key header or one of the
    /// key file's base64 lines (long enough not to match by chance).
    /// </summary>
    public bool ContainsClientKeyMaterial(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var keyLines = File.ReadAllLines(ClientKeyPath).Where(l => l.Length >= 40 && !l.StartsWith("-----", StringComparison.Ordinal)).ToList();
        if (keyLines.Count == 0)
        {
            throw new InvalidOperationException("The client key file has no base64 lines to look for.");
        }

        return text.Contains("PRIVATE KEY", StringComparison.Ordinal) || keyLines.Any(line => text.Contains(line, StringComparison.Ordinal));
    }

    /// <summary>
    /// Creates a handler that trusts only <see cref="Authority"/> (and checks the host name) and, when
    /// <paramref name="presentClientCertificate"/> is set, presents <see cref="ClientCertificate"/>: for fixtures and
    /// tests that talk to a TLS server independently of Lodestar.
    /// </summary>
    public SocketsHttpHandler CreateHttpHandler(bool presentClientCertificate = true)
    {
        var handler = new SocketsHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            certificate is not null
            && (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) == SslPolicyErrors.None
            && IsIssuedByAuthority(certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData()), chain, forServer: true);
        if (presentClientCertificate)
        {
            handler.SslOptions.ClientCertificates = [ClientCertificate];
        }

        return handler;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Authority.Dispose();
        Intermediate?.Dispose();
        ServerCertificate.Dispose();
        ClientCertificate.Dispose();
        OtherAuthority.Dispose();
        try
        {
            Directory.Delete(DirectoryPath, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private void Write()
    {
        var serverChain = new StringBuilder().Append(ServerCertificate.ExportCertificatePem()).Append('\n');
        if (Intermediate is not null)
        {
            serverChain.Append(Intermediate.ExportCertificatePem()).Append('\n');
        }

        var clientPem = ClientCertificate.ExportCertificatePem() + "\n";
        var clientKeyPem = TestCertificates.ExportPrivateKeyPem(ClientCertificate) + "\n";
        File.WriteAllText(CaCertificatePath, Authority.ExportCertificatePem() + "\n");
        File.WriteAllText(OtherCaCertificatePath, OtherAuthority.ExportCertificatePem() + "\n");
        File.WriteAllText(ServerCertificatePath, serverChain.ToString());
        File.WriteAllText(ClientCertificatePath, clientPem);
        WriteSecret(ServerKeyPath, TestCertificates.ExportPrivateKeyPem(ServerCertificate) + "\n");
        WriteSecret(ClientKeyPath, clientKeyPem);
        WriteSecret(ClientCertificateAndKeyPath, clientPem + clientKeyPem);
    }

    private static void WriteSecret(string path, string pem)
    {
        File.WriteAllText(path, pem);
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
    }
}
