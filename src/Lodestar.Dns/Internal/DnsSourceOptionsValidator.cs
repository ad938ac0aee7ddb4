using Lodestar.Dns.Resolver.Internal;
using Microsoft.Extensions.Options;

namespace Lodestar.Dns.Internal;

/// <summary>Checks <see cref="DnsSourceOptions"/> at startup, naming each bad property.</summary>
internal sealed class DnsSourceOptionsValidator : IValidateOptions<DnsSourceOptions>
{
    public ValidateOptionsResult Validate(string? name, DnsSourceOptions options)
    {
        const string Prefix = nameof(DnsSourceOptions) + ".";
        var failures = new List<string>();
        foreach (var server in options.Servers)
        {
            if (!DnsResolverSettingsFactory.TryParseServer(server, out _))
            {
                failures.Add($"{Prefix}{nameof(options.Servers)} has '{server}', which is not an IP address with an optional port.");
            }
        }

        if (options.Ndots is < 0 or > 15)
        {
            failures.Add($"{Prefix}{nameof(options.Ndots)} is {options.Ndots}; it must be between 0 and 15.");
        }

        if (options.Timeout is { } timeout && (timeout < TimeSpan.FromMilliseconds(50) || timeout > TimeSpan.FromSeconds(30)))
        {
            failures.Add($"{Prefix}{nameof(options.Timeout)} is {timeout}; it must be between 50 ms and 30 s.");
        }

        if (options.Attempts is < 1 or > 5)
        {
            failures.Add($"{Prefix}{nameof(options.Attempts)} is {options.Attempts}; it must be between 1 and 5.");
        }

        if (options.UdpPayloadSize != 0 && options.UdpPayloadSize is < 512 or > 4096)
        {
            failures.Add($"{Prefix}{nameof(options.UdpPayloadSize)} is {options.UdpPayloadSize}; it must be 0 or between 512 and 4096.");
        }

        if (options.DefaultPort is < 1 or > 65535)
        {
            failures.Add($"{Prefix}{nameof(options.DefaultPort)} is {options.DefaultPort}; it must be between 1 and 65535.");
        }

        foreach (var pair in options.Ports)
        {
            if (pair.Value is < 1 or > 65535)
            {
                failures.Add($"{Prefix}{nameof(options.Ports)}['{pair.Key}'] is {pair.Value}; it must be between 1 and 65535.");
            }
        }

        foreach (var pair in options.SrvNames)
        {
            if (!DnsQueryWriter.IsValidName(pair.Value))
            {
                failures.Add($"{Prefix}{nameof(options.SrvNames)}['{pair.Key}'] is '{pair.Value}', which is not a valid DNS name.");
            }
        }

        if (options.SrvPortName is { Length: > 0 } portName && !DnsQueryWriter.IsValidName("_" + portName + "._tcp.example"))
        {
            failures.Add($"{Prefix}{nameof(options.SrvPortName)} is '{portName}', which is not a valid port name.");
        }

        if (options.MinTtl < TimeSpan.FromMilliseconds(100) || options.MinTtl > TimeSpan.FromHours(1))
        {
            failures.Add($"{Prefix}{nameof(options.MinTtl)} is {options.MinTtl}; it must be between 100 ms and 1 hour.");
        }

        if (options.MaxTtl < options.MinTtl || options.MaxTtl > TimeSpan.FromDays(1))
        {
            failures.Add($"{Prefix}{nameof(options.MaxTtl)} is {options.MaxTtl}; it must be at least {nameof(options.MinTtl)} and at most 1 day.");
        }

        if (options.NegativeTtl < TimeSpan.Zero)
        {
            failures.Add($"{Prefix}{nameof(options.NegativeTtl)} is {options.NegativeTtl}; it must not be negative.");
        }

        if (options.Backoff.Validate(DnsSourceOptions.SectionName + ":" + nameof(options.Backoff)) is { } backoff)
        {
            failures.Add(backoff);
        }

        if (string.IsNullOrWhiteSpace(options.ResolvConfPath))
        {
            failures.Add($"{Prefix}{nameof(options.ResolvConfPath)} is empty.");
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
