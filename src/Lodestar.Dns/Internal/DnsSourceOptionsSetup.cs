using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.Dns.Internal;

/// <summary>Binds <see cref="DnsSourceOptions"/> from <c>Lodestar:Dns</c> when an <see cref="IConfiguration"/> is registered.</summary>
internal sealed class DnsSourceOptionsSetup(IServiceProvider services) : IConfigureOptions<DnsSourceOptions>
{
    public void Configure(DnsSourceOptions options)
    {
        if (services.GetService<IConfiguration>()?.GetSection(DnsSourceOptions.SectionName) is not { } section)
        {
            return;
        }

        section.Bind(options);
        // The obsolete RetryDelay and MaxRetryDelay bind into Backoff too; binding Backoff last makes it win whatever
        // order the binder visits properties in.
        section.GetSection(nameof(DnsSourceOptions.Backoff)).Bind(options.Backoff);
    }
}
