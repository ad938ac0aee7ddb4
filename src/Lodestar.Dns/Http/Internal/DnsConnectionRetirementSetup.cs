using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Http;
using Microsoft.Extensions.Options;

namespace Lodestar.Dns.Http.Internal;

/// <summary>
/// Installs <see cref="ConnectionRetirer.ConnectAsync"/> as the connect callback of every factory client whose primary
/// handler is a <see cref="SocketsHttpHandler"/> without one. A post-configure step, so it runs after
/// <c>UseSocketsHttpHandler</c> (which <c>AddLodestar</c> on a client calls) has created the handler.
/// </summary>
internal sealed class DnsConnectionRetirementSetup : IPostConfigureOptions<HttpClientFactoryOptions>
{
    public void PostConfigure(string? name, HttpClientFactoryOptions options)
        => options.HttpMessageHandlerBuilderActions.Add(static handlerBuilder =>
        {
            var dnsOptions = handlerBuilder.Services.GetRequiredService<IOptionsMonitor<DnsSourceOptions>>().CurrentValue;
            if (dnsOptions.RetireRemovedConnections && handlerBuilder.PrimaryHandler is SocketsHttpHandler { ConnectCallback: null } sockets)
            {
                sockets.ConnectCallback = handlerBuilder.Services.GetRequiredService<ConnectionRetirer>().ConnectAsync;
            }
        });
}
