using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Lodestar.Testing.Tls;

/// <summary>
/// Generates throw-away certificates with <see cref="CertificateRequest"/>: certificate authorities (roots and
/// intermediates), server certificates for <c>127.0.0.1</c> and <c>localhost</c>, and client certificates. Every
/// certificate returned carries its private key, usable for TLS on every platform.
/// </summary>
public static class TestCertificates
{
    private const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    /// <summary>Creates a self-signed CA certificate with its private key.</summary>
    /// <param name="name">The common name of the CA.</param>
    public static X509Certificate2 CreateAuthority(string name = "Lodestar Test CA")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = AuthorityRequest(name, key);
        var now = DateTimeOffset.UtcNow;
        return request.CreateSelfSigned(now.AddDays(-1), now.AddDays(7));
    }

    /// <summary>Creates an intermediate CA certificate signed by <paramref name="issuer"/>, with its private key.</summary>
    /// <param name="issuer">The CA that signs the intermediate.</param>
    /// <param name="name">The common name of the intermediate.</param>
    public static X509Certificate2 CreateIntermediate(X509Certificate2 issuer, string name = "Lodestar Test Intermediate CA")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = AuthorityRequest(name, key);
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
        return Sign(request, issuer, key, TimeSpan.FromDays(6.5));
    }

    /// <summary>
    /// Creates a server certificate signed by <paramref name="issuer"/> whose subject alternative names are the IP
    /// address <c>127.0.0.1</c> and the DNS name <c>localhost</c>, or only <paramref name="dnsNames"/> when given.
    /// </summary>
    /// <param name="issuer">The CA that signs the certificate.</param>
    /// <param name="subject">The common name, which TLS clients do not match against the host.</param>
    /// <param name="alsoClientAuth">Whether the certificate may also authenticate a client (servers that dial themselves, as etcd's gateway does, need it).</param>
    /// <param name="dnsNames">The only names the certificate is for, or <see langword="null"/> for <c>127.0.0.1</c> and <c>localhost</c>.</param>
    public static X509Certificate2 CreateServer(X509Certificate2 issuer, string subject = "lodestar-test-server", bool alsoClientAuth = false, IReadOnlyList<string>? dnsNames = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = LeafRequest(subject, key, issuer, alsoClientAuth ? [ServerAuth, ClientAuth] : [ServerAuth]);
        var names = new SubjectAlternativeNameBuilder();
        if (dnsNames is null)
        {
            names.AddIpAddress(IPAddress.Loopback);
            names.AddDnsName("localhost");
        }
        else
        {
            foreach (var name in dnsNames)
            {
                names.AddDnsName(name);
            }
        }

        request.CertificateExtensions.Add(names.Build());
        return Sign(request, issuer, key, TimeSpan.FromDays(6));
    }

    /// <summary>Creates a client certificate (extended key usage clientAuth) signed by <paramref name="issuer"/>.</summary>
    /// <param name="issuer">The CA that signs the certificate.</param>
    /// <param name="subject">The common name, which servers such as etcd take as the user name.</param>
    public static X509Certificate2 CreateClient(X509Certificate2 issuer, string subject = "lodestar-test-client")
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return Sign(LeafRequest(subject, key, issuer, [ClientAuth]), issuer, key, TimeSpan.FromDays(6));
    }

    /// <summary>Returns the certificate's private key as PKCS#8 PEM.</summary>
    public static string ExportPrivateKeyPem(X509Certificate2 certificate)
    {
        using var key = certificate.GetECDsaPrivateKey() ?? throw new ArgumentException("The certificate has no ECDSA private key.", nameof(certificate));
        return key.ExportPkcs8PrivateKeyPem();
    }

    private static CertificateRequest AuthorityRequest(string name, ECDsa key)
    {
        var request = new CertificateRequest("CN=" + name, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request;
    }

    private static CertificateRequest LeafRequest(string subject, ECDsa key, X509Certificate2 issuer, string[] usages)
    {
        var request = new CertificateRequest("CN=" + subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        var oids = new OidCollection();
        foreach (var usage in usages)
        {
            oids.Add(new Oid(usage));
        }

        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(oids, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
        return request;
    }

    private static X509Certificate2 Sign(CertificateRequest request, X509Certificate2 issuer, ECDsa key, TimeSpan lifetime)
    {
        // A little inside the issuer's validity, which starts a day back.
        var now = DateTimeOffset.UtcNow;
        using var signed = request.Create(issuer, now.AddHours(-12), now + lifetime, RandomNumberGenerator.GetBytes(12));
        using var withKey = signed.CopyWithPrivateKey(key);
        // Round-trip through PKCS#12 so TLS can use the key on every platform.
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }
}
