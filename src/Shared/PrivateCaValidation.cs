using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Lodestar.Internal;

/// <summary>
/// Server certificate validation for registry clients configured with a private CA file: the certificate must chain to
/// one of the configured authorities, which replace the system's roots as they do in the Go clients of etcd and Consul
/// (and in client-go), with the certificates the server sent serving as intermediates. A host name mismatch or a
/// missing certificate never passes.
/// </summary>
internal static class PrivateCaValidation
{
    /// <summary>Returns a validation callback that trusts only <paramref name="authorities"/>.</summary>
    public static RemoteCertificateValidationCallback Create(X509Certificate2Collection authorities)
        => (_, certificate, presented, errors) => Validate(certificate, presented, errors, authorities);

    /// <summary>Accepts a certificate that chains to one of <paramref name="authorities"/> and matches the host name.</summary>
    public static bool Validate(X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors, X509Certificate2Collection authorities)
    {
        // Name mismatches and missing certificates are never forgiven; the chain is judged against the configured CA
        // alone, whatever the system's roots said of it.
        if (certificate is null || (errors & ~SslPolicyErrors.RemoteCertificateChainErrors) != SslPolicyErrors.None)
        {
            return false;
        }

        using var leaf = X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.CustomTrustStore.AddRange(authorities);
        if (presented is not null)
        {
            // Without the intermediates the server sent, a certificate issued by an intermediate CA fails.
            foreach (var element in presented.ChainElements)
            {
                chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            }
        }

        return chain.Build(leaf);
    }
}
