using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Lodestar.Internal;
using Lodestar.Testing.Tls;

namespace Lodestar.Tests.Internal;

public sealed class PrivateCaValidationTests : IDisposable
{
    private readonly X509Certificate2 _authority = TestCertificates.CreateAuthority("Registry CA");
    private readonly X509Certificate2 _otherAuthority = TestCertificates.CreateAuthority("Some Public CA");

    public void Dispose()
    {
        _authority.Dispose();
        _otherAuthority.Dispose();
    }

    [Fact]
    public void Validate_SignedByTheConfiguredAuthority_PassesDespiteTheSystemsChainError()
    {
        using var server = TestCertificates.CreateServer(_authority);

        Assert.True(PrivateCaValidation.Validate(server, null, SslPolicyErrors.RemoteCertificateChainErrors, [_authority]));
    }

    [Fact]
    public void Validate_TrustedBySystemButNotByTheConfiguredAuthority_Fails()
    {
        // The configured CA replaces the system's roots, as in the Go clients: a certificate from another CA fails even
        // when the platform reported no error for it.
        using var server = TestCertificates.CreateServer(_otherAuthority);

        Assert.False(PrivateCaValidation.Validate(server, null, SslPolicyErrors.None, [_authority]));
    }

    [Fact]
    public void Validate_NameMismatchOrNoCertificate_NeverPasses()
    {
        using var server = TestCertificates.CreateServer(_authority);

        Assert.False(PrivateCaValidation.Validate(server, null, SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateChainErrors, [_authority]));
        Assert.False(PrivateCaValidation.Validate(null, null, SslPolicyErrors.RemoteCertificateNotAvailable, [_authority]));
    }

    [Fact]
    public void Validate_IssuedByAnIntermediate_PassesOnlyWithTheIntermediateTheServerSent()
    {
        using var intermediate = TestCertificates.CreateIntermediate(_authority);
        using var server = TestCertificates.CreateServer(intermediate);
        using var presented = new X509Chain();
        presented.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        presented.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        presented.ChainPolicy.ExtraStore.Add(intermediate);
        presented.Build(server);

        Assert.True(PrivateCaValidation.Validate(server, presented, SslPolicyErrors.RemoteCertificateChainErrors, [_authority]));
        Assert.False(PrivateCaValidation.Validate(server, null, SslPolicyErrors.RemoteCertificateChainErrors, [_authority]));
    }
}
