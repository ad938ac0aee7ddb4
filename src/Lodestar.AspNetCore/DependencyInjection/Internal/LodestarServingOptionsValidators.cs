using Lodestar.AspNetCore.Registration;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Lodestar.AspNetCore.DependencyInjection.Internal;

/// <summary>Binds <see cref="LodestarServingOptions"/> from the <c>Lodestar:Serving</c> section when configuration is registered.</summary>
internal sealed class LodestarServingOptionsSetup(IServiceProvider services) : IConfigureOptions<LodestarServingOptions>
{
    public void Configure(LodestarServingOptions options)
        => services.GetService<IConfiguration>()?.GetSection(LodestarServingOptions.SectionName).Bind(options);
}

/// <summary>Checks <see cref="LodestarServingOptions"/> at startup.</summary>
internal sealed class LodestarServingOptionsValidator : IValidateOptions<LodestarServingOptions>
{
    public ValidateOptionsResult Validate(string? name, LodestarServingOptions options)
    {
        var failures = new List<string>();
        CheckPath(nameof(options.LivenessPath), options.LivenessPath, failures);
        CheckPath(nameof(options.ReadinessPath), options.ReadinessPath, failures);
        if (string.Equals(options.LivenessPath, options.ReadinessPath, StringComparison.OrdinalIgnoreCase))
        {
            failures.Add($"{nameof(LodestarServingOptions)}.{nameof(options.LivenessPath)} and {nameof(options.ReadinessPath)} are both '{options.LivenessPath}'; they must differ.");
        }

        CheckRange(nameof(LodestarServingOptions) + "." + nameof(options.CheckTimeout), options.CheckTimeout, TimeSpan.FromMilliseconds(10), TimeSpan.FromMinutes(1), failures);
        CheckRange(nameof(LodestarServingOptions) + "." + nameof(options.CacheDuration), options.CacheDuration, TimeSpan.Zero, TimeSpan.FromMinutes(1), failures);
        CheckRange(nameof(LodestarServingOptions) + "." + nameof(options.DrainDelay), options.DrainDelay, TimeSpan.Zero, TimeSpan.FromMinutes(5), failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }

    private static void CheckPath(string what, string? path, List<string> failures)
    {
        if (string.IsNullOrWhiteSpace(path) || !path.StartsWith('/'))
        {
            failures.Add($"{nameof(LodestarServingOptions)}.{what} is '{path}'; it must start with '/'.");
        }
    }

    internal static void CheckRange(string what, TimeSpan value, TimeSpan min, TimeSpan max, List<string> failures)
    {
        if (value < min || value > max)
        {
            failures.Add($"{what} is {value}; it must be between {min} and {max}.");
        }
    }
}

/// <summary>Checks <see cref="LodestarRegistrationOptions"/> at startup.</summary>
internal sealed class LodestarRegistrationOptionsValidator : IValidateOptions<LodestarRegistrationOptions>
{
    public ValidateOptionsResult Validate(string? name, LodestarRegistrationOptions options)
    {
        const string Prefix = nameof(LodestarRegistrationOptions) + ".";
        var failures = new List<string>();
        if (string.IsNullOrWhiteSpace(options.ServiceName))
        {
            failures.Add($"{Prefix}{nameof(options.ServiceName)} is empty; set the logical service name to register.");
        }

        if (options.AdvertisePort is < 1 or > 65535)
        {
            failures.Add($"{Prefix}{nameof(options.AdvertisePort)} is {options.AdvertisePort}; it must be between 1 and 65535.");
        }

        if (options.AdvertiseAddress is { } address && Registration.Internal.AdvertisedAddress.IsWildcard(address.Trim()))
        {
            failures.Add($"{Prefix}{nameof(options.AdvertiseAddress)} is the wildcard '{address}'; advertise a concrete address.");
        }

        if (options.Scheme is not null and not "http" and not "https")
        {
            failures.Add($"{Prefix}{nameof(options.Scheme)} is '{options.Scheme}'; it must be http, https or null.");
        }

        LodestarServingOptionsValidator.CheckRange(Prefix + nameof(options.Ttl), options.Ttl, TimeSpan.FromSeconds(1), TimeSpan.FromHours(1), failures);
        LodestarServingOptionsValidator.CheckRange(Prefix + nameof(options.DeregisterTimeout), options.DeregisterTimeout, TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(1), failures);
        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
