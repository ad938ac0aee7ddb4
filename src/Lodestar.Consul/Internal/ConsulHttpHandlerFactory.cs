using System.Security.Cryptography.X509Certificates;
using Lodestar.Internal;

namespace Lodestar.Consul.Internal;

/// <summary>Builds the primary handler of the Consul client: connect timeout, custom CA, client certificate.</summary>
internal static class ConsulHttpHandlerFactory
{
    public static SocketsHttpHandler Create(ConsulOptions options)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectTimeout = options.RequestTimeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1),
            UseCookies = false,
            AllowAutoRedirect = false,
        };

        if (options.ClientCertificatePath is not null && options.ClientKeyPath is not null)
        {
            var certificate = X509Certificate2.CreateFromPemFile(options.ClientCertificatePath, options.ClientKeyPath);
            handler.SslOptions.ClientCertificates = [certificate];
        }

        if (options.TlsSkipVerify)
        {
            handler.SslOptions.RemoteCertificateValidationCallback = static (_, _, _, _) => true;
        }
        else if (options.CaCertificatePath is not null)
        {
            var authorities = new X509Certificate2Collection();
            authorities.ImportFromPemFile(options.CaCertificatePath);
            handler.SslOptions.RemoteCertificateValidationCallback = PrivateCaValidation.Create(authorities);
        }

        return handler;
    }
}
