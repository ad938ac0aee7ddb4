using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Grpc.Net.Client;
using Lodestar.Discovery;
using Lodestar.Xds.Bootstrap;

namespace Lodestar.Xds.Client.Internal;

/// <summary>
/// Opens gRPC channels to one management server (TCP with or without TLS, or a unix socket as Istio's agent offers) and
/// builds the headers of each stream, with the bearer token read again from its file for every stream.
/// </summary>
/// <remarks>
/// Each stream gets a channel of its own: grpc-dotnet's channel keeps a reconnect backoff of its own on the wall clock,
/// which would otherwise decide, instead of the client's backoff, when a server that came back is tried again.
/// </remarks>
internal sealed class XdsTransport
{
    /// <summary>The largest response accepted: an EDS answer for 10,000 endpoints is about 1 MB.</summary>
    private const int MaxReceiveMessageSize = 64 * 1024 * 1024;

    private readonly XdsServerConfig _server;
    private readonly string? _tokenFile;
    private readonly SecretRedactor _redactor;

    public XdsTransport(XdsServerConfig server, string? tokenFileOverride, SecretRedactor redactor)
    {
        _server = server;
        _tokenFile = string.IsNullOrEmpty(tokenFileOverride) ? server.TokenFile : tokenFileOverride;
        _redactor = redactor;
        if (CheckTokenPolicy(server, tokenFileOverride) is { } problem)
        {
            throw new XdsClientException(problem);
        }
    }

    public string DisplayName => _server.DisplayName;

    /// <summary>Opens a new channel for one stream; the caller disposes it when the stream ends.</summary>
    public GrpcChannel OpenChannel()
    {
        var server = _server;
        var handler = new SocketsHttpHandler
        {
            EnableMultipleHttp2Connections = false,
            KeepAlivePingDelay = TimeSpan.FromSeconds(30),
            KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            ConnectTimeout = TimeSpan.FromSeconds(10),
        };
        string address;
        if (server.UnixSocketPath is { } socketPath)
        {
            handler.ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            };
            address = (server.UseTls ? "https" : "http") + "://localhost";
        }
        else
        {
            address = (server.UseTls ? "https://" : "http://") + server.Authority;
        }

        if (server.UseTls)
        {
            ConfigureTls(handler, server);
        }

        return GrpcChannel.ForAddress(address, new GrpcChannelOptions
        {
            HttpHandler = handler,
            DisposeHttpClient = true,
            MaxReceiveMessageSize = MaxReceiveMessageSize,
            MaxSendMessageSize = MaxReceiveMessageSize,
        });
    }


    /// <summary>Builds the headers of a new stream, reading the token file again.</summary>
    public Metadata BuildHeaders()
    {
        var headers = new Metadata();
        if (_tokenFile is null)
        {
            return headers;
        }

        string token;
        try
        {
            token = File.ReadAllText(_tokenFile).Trim();
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new XdsClientException($"xDS server '{DisplayName}': the token file '{_tokenFile}' cannot be read: {ex.Message}", ex);
        }

        if (token.Length == 0)
        {
            throw new XdsClientException($"xDS server '{DisplayName}': the token file '{_tokenFile}' is empty.");
        }

        _redactor.Add(token);
        headers.Add("authorization", "Bearer " + token);
        return headers;
    }

    /// <summary>
    /// Returns why a token may not be sent to <paramref name="server"/>, or <see langword="null"/>: a bearer token goes
    /// only over TLS, a unix socket or a loopback address, never in clear text over a network.
    /// </summary>
    public static string? CheckTokenPolicy(XdsServerConfig server, string? tokenFileOverride)
    {
        var tokenFile = string.IsNullOrEmpty(tokenFileOverride) ? server.TokenFile : tokenFileOverride;
        return tokenFile is not null && !server.UseTls && server.UnixSocketPath is null && !IsLoopback(server.Authority!)
            ? $"xDS server '{server.DisplayName}': a token is sent only over 'tls' channel credentials, a unix socket or a loopback address."
            : null;
    }

    private static bool IsLoopback(string authority)
    {
        var host = authority[..authority.LastIndexOf(':')].Trim('[', ']');
        return string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out var ip) && IPAddress.IsLoopback(ip));
    }

    private static void ConfigureTls(SocketsHttpHandler handler, XdsServerConfig server)
    {
        var ssl = new SslClientAuthenticationOptions();
        if (server.CertificateFile is { } cert && server.PrivateKeyFile is { } key)
        {
            ssl.ClientCertificates = [X509Certificate2.CreateFromPemFile(cert, key)];
        }

        if (server.CaCertificateFile is { } caFile)
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPemFile(caFile);

            // A configured CA replaces the system roots, as gRPC's file-watcher certificate provider does.
            ssl.RemoteCertificateValidationCallback = (_, certificate, chain, errors) =>
            {
                if (certificate is null || (errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0 || (errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0)
                {
                    return false;
                }

                using var custom = new X509Chain();
                custom.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
                custom.ChainPolicy.CustomTrustStore.AddRange(roots);
                custom.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
                if (chain is not null)
                {
                    foreach (var element in chain.ChainElements)
                    {
                        custom.ChainPolicy.ExtraStore.Add(element.Certificate);
                    }
                }

                return custom.Build(new X509Certificate2(certificate));
            };
        }

        handler.SslOptions = ssl;
    }
}
