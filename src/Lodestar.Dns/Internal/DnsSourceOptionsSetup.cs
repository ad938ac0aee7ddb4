using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Dns.Internal;

/// <summary>Binds <see cref="DnsSourceOptions"/> from <c>Lodestar:Dns</c> when an <see cref="IConfiguration"/> is registered.</summary>
internal sealed class DnsSourceOptionsSetup(IServiceProvider services) : IConfigureOptions<DnsSourceOptions>
{
    public void Configure(DnsSourceOptions options)
        => services.GetService<IConfiguration>()?.GetSection(DnsSourceOptions.SectionName).Bind(options);
}
